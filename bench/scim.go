package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// scimClient talks to one tenant's SCIM endpoint the way an IdP does.
type scimClient struct {
	base   string // e.g. http://127.0.0.1:PORT/scim/v2/bench
	header http.Header
	http   *http.Client
}

func newSCIMClient(adminURL, gatewayURL, tenant string) (*scimClient, error) {
	resp, err := http.Post(adminURL+"/portcullis/tenants/"+tenant+"/scim-token", "application/json", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		return nil, fmt.Errorf("making a SCIM token: status %d, %v", resp.StatusCode, err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok.Token)
	h.Set("Content-Type", "application/scim+json")
	return &scimClient{
		base:   gatewayURL + "/scim/v2/" + tenant,
		header: h,
		http:   &http.Client{Timeout: 60 * time.Second},
	}, nil
}

// do sends one SCIM request and decodes a JSON answer into out (if not nil).
func (c *scimClient) do(method, path string, body any, out any) (int, error) {
	status, raw, err := c.exchange(method, path, body)
	if err != nil {
		return status, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return status, err
		}
	}
	return status, nil
}

// exchange sends a request and reads the whole answer: the time a client
// waits for the gateway, apart from what it then does with the answer
// (decoding a page of 100 users takes this harness ~0.8 ms).
func (c *scimClient) exchange(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header = c.header.Clone()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, truncate(raw, 300))
	}
	return resp.StatusCode, raw, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func benchUserName(i uint64) string { return fmt.Sprintf("user%07d@bench.example", i) }

// userTargeter posts users user<next>…, each a new userName, with the
// attributes an Okta push carries.
func (c *scimClient) userTargeter(next *atomic.Uint64) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		i := next.Add(1)
		t.Method = http.MethodPost
		t.URL = c.base + "/Users"
		t.Header = c.header
		t.Body = fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`+
			`"userName":%q,"externalId":"ext-%d","name":{"givenName":"Bench","familyName":"User %d"},`+
			`"emails":[{"value":%q,"type":"work","primary":true}],"displayName":"Bench User %d","active":true}`,
			benchUserName(i), i, i, benchUserName(i), i)
		return nil
	}
}

// filterTargeter looks users up by userName among the first n stored.
func (c *scimClient) filterTargeter(n uint64) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		f := fmt.Sprintf(`userName eq %q`, benchUserName(1+rand.Uint64N(n)))
		t.Method = http.MethodGet
		t.URL = c.base + "/Users?filter=" + url.QueryEscape(f)
		t.Header = c.header
		return nil
	}
}

// addMemberTargeter adds ids[i] to the group, one PATCH each, in order.
func (c *scimClient) addMemberTargeter(groupID string, ids []string) vegeta.Targeter {
	var next atomic.Int64
	return func(t *vegeta.Target) error {
		i := next.Add(1) - 1
		if i >= int64(len(ids)) {
			return vegeta.ErrNoTargets
		}
		t.Method = http.MethodPatch
		t.URL = c.base + "/Groups/" + groupID
		t.Header = c.header
		t.Body = fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
			`"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, ids[i])
		return nil
	}
}

// userIDs lists the ids of the first n users in the endpoint's order.
func (c *scimClient) userIDs(n int) ([]string, error) {
	ids := make([]string, 0, n)
	for len(ids) < n {
		var page struct {
			Resources []struct {
				ID string `json:"id"`
			} `json:"Resources"`
		}
		path := fmt.Sprintf("/Users?attributes=id&startIndex=%d&count=%d", len(ids)+1, min(1000, n-len(ids)))
		if _, err := c.do(http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		if len(page.Resources) == 0 {
			return nil, fmt.Errorf("only %d users listed, wanted %d", len(ids), n)
		}
		for _, r := range page.Resources {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

// createGroup makes a group and returns its id.
func (c *scimClient) createGroup(name string) (string, error) {
	var g struct {
		ID string `json:"id"`
	}
	_, err := c.do(http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
	}, &g)
	return g.ID, err
}

// addMembers adds ids to the group in PATCHes of up to 1,000 members, as an
// IdP's initial push does.
func (c *scimClient) addMembers(groupID string, ids []string) error {
	for len(ids) > 0 {
		n := min(1000, len(ids))
		members := make([]map[string]string, n)
		for i, id := range ids[:n] {
			members[i] = map[string]string{"value": id}
		}
		if _, err := c.do(http.MethodPatch, "/Groups/"+groupID, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "add", "path": "members", "value": members}},
		}, nil); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// onlySCIMPost is the -only value that runs the POST /Users figures alone.
const onlySCIMPost = "scim-post"

// runSCIMPostOnly measures POST /Users at c=1 and c=-c on the Badger
// gateway (profiling the concurrent run if asked) and, with a PostgreSQL
// server, on replica A of the PostgreSQL pair, then prints those rows and
// saves the JSON like a full run.
func runSCIMPostOnly(o options, res *results, gw *gateway, env *benchEnv, scim *scimClient, bin, backend string) error {
	var next atomic.Uint64
	if err := measurePosts(o, res, gw, env, scim, &next); err != nil {
		return err
	}
	var err error
	if postgresServer(o.pgURL) != "" {
		gw.stop()
		o.skipProxy = true
		logf("postgres: the POST /Users runs on PostgreSQL")
		if res.Postgres, err = runPostgres(o, bin, backend); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Portcullis benchmark (-only %s)\t%s, %d CPUs, %s\t\n", onlySCIMPost, res.GoVersion, res.CPUs, res.Started.Format("2006-01-02 15:04 UTC"))
	rows := []struct {
		name string
		r    loadResult
	}{{"SCIM POST /Users c=1", res.SCIMPost1}, {fmt.Sprintf("SCIM POST /Users c=%d", o.concurrency), res.SCIMPost16}}
	if p := res.Postgres; p != nil {
		rows = append(rows, struct {
			name string
			r    loadResult
		}{"postgres: SCIM POST /Users c=1", p.SCIMPost1}, struct {
			name string
			r    loadResult
		}{fmt.Sprintf("postgres: SCIM POST /Users c=%d", o.concurrency), p.SCIMPost16})
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%.0f/s\tp50 %.2f ms, p99 %.2f ms, %.0f µs CPU/req, answers %v\t\n", row.name, row.r.PerSecond, row.r.P50ms, row.r.P99ms, row.r.CPUPerRequestUs, row.r.StatusCodes)
	}
	tw.Flush()
	return saveJSON(res, o.out)
}

// measurePosts takes the POST /Users figures at c=1 and at -c (profiling
// the concurrent run if asked); next numbers the users created.
func measurePosts(o options, res *results, gw *gateway, env *benchEnv, scim *scimClient, next *atomic.Uint64) error {
	var err error
	logf("SCIM: POST /Users at c=1 and c=%d", o.concurrency)
	if res.SCIMPost1, err = runLoad("post-c1", scim.userTargeter(next), 1, uint64(o.scimPosts), o.maxRun, gw.pid()); err != nil {
		return err
	}
	if o.profile != "" {
		go saveProfile(env.adminURL, o.profile+"-scim-post.pprof")
	}
	res.SCIMPost16, err = runLoad("post-c16", scim.userTargeter(next), o.concurrency, uint64(o.scimPosts), o.maxRun, gw.pid())
	return err
}
