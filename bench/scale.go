package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
	"github.com/portcullis/portcullis/storage/postgres"
)

// The Scale section: a store of a million users and ten thousand groups
// (a hundred thousand users on PostgreSQL), loaded through the store's own
// API from this process (batched transactions, not SCIM over HTTP: that
// would take hours and measure the write path, not the read paths), then
// the gateway started on it and the read paths measured over HTTP.

// scaleResults is the section, as saved in JSON.
type scaleResults struct {
	Badger   *scaleFigures `json:"badger,omitempty"`
	Postgres *scaleFigures `json:"postgres,omitempty"`
}

// scaleFigures are one store's figures at scale.
type scaleFigures struct {
	Users       int     `json:"users"`
	Groups      int     `json:"groups"`
	Memberships int     `json:"memberships"`
	LoadSeconds float64 `json:"load_seconds"`
	// StoreOpenMs is opening the loaded store alone, in the bench process.
	StoreOpenMs float64 `json:"store_open_ms"`
	// AdminMs and StartupMs run from the gateway process's start to its
	// admin endpoint answering and to a SCIM read answering 200 (the
	// store open, the tenant serving).
	AdminMs   float64 `json:"startup_admin_ms"`
	StartupMs float64 `json:"startup_site_ms"`
	// SettleMs is how long after start-up the gateway's background work
	// (a bulk-loaded store's compaction) went on before the figures below
	// were taken (waitForQuiet).
	SettleMs float64    `json:"settle_ms"`
	Filter   loadResult `json:"filter_username_eq"`
	// FirstPage and DeepPage are GET /Users?count=100 at startIndex=1 and
	// at random startIndex over the whole directory (no cursor to
	// continue from), timed from the request to the answer's last byte
	// (the harness decodes the page after; see scimClient.exchange).
	FirstPage latencies `json:"page_first"`
	DeepPage  latencies `json:"page_deep"`
	// Reload is a signed-in request right after a SCIM write of an
	// unrelated user (which moves the tenant's generation, so the request
	// reloads its identity from the store); Hit is the same request again
	// (a cache hit). Loads counts the identity cache's store reads over
	// the reload samples (one per sample when each reloaded).
	Reload latencies `json:"identity_reload"`
	Hit    latencies `json:"identity_hit"`
	Loads  float64   `json:"identity_loads"`
	// The controls: what this machine gives any request through the same
	// gateway process at the same moment, to read the latencies above
	// against. ControlRespond is Caddy answering from a handler of its
	// own (the matched site's static `respond`, no store, no upstream),
	// timed like the lookups; ControlProxy is plain `reverse_proxy` to the
	// same backend, timed in the reload loop like Reload and Hit.
	ControlRespond loadResult `json:"control_respond"`
	ControlProxy   latencies  `json:"control_proxy"`
	RSSMiB         float64    `json:"rss_mib"`
	// RSSParts splits RSSMiB: anonymous memory (the Go heap, Badger's
	// memtable and block cache) and mapped files (the binary, the store's
	// files).
	RSSParts rssParts `json:"rss_parts"`
}

// latencies summarises timed samples.
type latencies struct {
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	// CPUPerRequestUs is the gateway's CPU time over the samples per
	// request (less swayed by a busy machine than the latencies).
	CPUPerRequestUs float64 `json:"cpu_per_request_us,omitempty"`
}

func summarise(samples []time.Duration) latencies {
	if len(samples) == 0 {
		return latencies{}
	}
	p50, p99 := quantiles(samples) // sorts
	return latencies{Samples: len(samples), P50ms: p50, P99ms: p99, MaxMs: ms(samples[len(samples)-1])}
}

func scaleUserName(i int) string { return fmt.Sprintf("scale%07d@scale.example", i) }

// Loading batches: each user writes ~5 keys and each membership ~5 more
// (Badger refuses a transaction past ~52,000 writes).
const (
	scaleUserBatch  = 1000
	scaleGroupBatch = 1000
)

// loadScale fills the bench tenant of st with users and groups. Each user
// is in 1 to 4 groups, picked with a skew (index = groups × u²), so group
// sizes run from a handful to ~1% of the users, as real directories'
// "everyone"-style groups do. Deterministic for a given size.
func loadScale(ctx context.Context, st storage.Store, users, groups int, token string) (memberships int, err error) {
	rng := rand.New(rand.NewPCG(13, uint64(users)))
	// The IdP's SCIM token, so the bench can tell the gateway serves the
	// store (a SCIM read answers 200) without writing through it first.
	err = st.Update(ctx, benchTenant, func(tx storage.Tx) error {
		return tx.PutSCIMToken(&storage.SCIMToken{ID: storage.NewID(), Hash: storage.HashSecret(token), Created: time.Now()})
	})
	if err != nil {
		return 0, err
	}
	groupIDs := make([]string, groups)
	for start := 0; start < groups; start += scaleGroupBatch {
		end := min(groups, start+scaleGroupBatch)
		err := st.Update(ctx, benchTenant, func(tx storage.Tx) error {
			for i := start; i < end; i++ {
				groupIDs[i] = storage.NewID()
				if err := tx.PutGroup(&storage.Group{
					ID: groupIDs[i], DisplayName: fmt.Sprintf("scale-group-%05d", i),
					ExternalID: fmt.Sprintf("sg-%d", i), Source: storage.SourceSCIM,
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("groups %d-%d: %w", start, end, err)
		}
	}
	started := time.Now()
	for start := 0; start < users; start += scaleUserBatch {
		end := min(users, start+scaleUserBatch)
		// Pick the memberships outside the transaction: a retried fn must
		// write the same thing.
		type planned struct {
			id     string
			groups []int
		}
		plan := make([]planned, 0, end-start)
		for i := start; i < end; i++ {
			n := 1 + rng.IntN(4)
			p := planned{id: storage.NewID()}
			for len(p.groups) < n {
				g := int(float64(groups) * math.Pow(rng.Float64(), 2))
				if g < groups && !contains(p.groups, g) {
					p.groups = append(p.groups, g)
				}
			}
			plan = append(plan, p)
		}
		err := st.Update(ctx, benchTenant, func(tx storage.Tx) error {
			for k, p := range plan {
				i := start + k
				name := scaleUserName(i)
				attrs := fmt.Appendf(nil, `{"name":{"givenName":"Scale","familyName":"User %d"},"emails":[{"value":%q,"type":"work","primary":true}]}`, i, name)
				if err := tx.PutUser(&storage.User{
					ID: p.id, UserName: name, ExternalID: fmt.Sprintf("su-%d", i),
					DisplayName: fmt.Sprintf("Scale User %d", i), Emails: []string{name},
					Active: true, Source: storage.SourceSCIM, Attributes: json.RawMessage(attrs),
				}); err != nil {
					return err
				}
				for _, g := range p.groups {
					if _, err := tx.AddMember(groupIDs[g], storage.Member{ID: p.id, Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("users %d-%d: %w", start, end, err)
		}
		for _, p := range plan {
			memberships += len(p.groups)
		}
		if end%100000 == 0 {
			logf("scale: %d users stored (%.0f/s)", end, float64(end)/time.Since(started).Seconds())
		}
	}
	return memberships, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// runScale measures the section for Badger (always) and PostgreSQL (when
// a server is given).
func runScale(o options, bin, backend string) (*scaleResults, error) {
	res := &scaleResults{}
	if o.scaleUsers > 0 {
		dir := o.scaleDir
		reuse := dir != ""
		if reuse {
			if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
				return nil, fmt.Errorf("-scale-dir: %w", err)
			}
		} else {
			var err error
			if dir, err = os.MkdirTemp("", "portcullis-bench-scale-"); err != nil {
				return nil, err
			}
			if !o.keep {
				defer os.RemoveAll(dir)
			} else {
				logf("keeping %s (reuse it with -scale-dir)", dir)
			}
		}
		data := filepath.Join(dir, "data")
		f := &scaleFigures{Users: o.scaleUsers, Groups: o.scaleGroups}
		token := randomHex(32)
		if !reuse {
			logf("scale: loading %d users and %d groups into Badger (%s)", o.scaleUsers, o.scaleGroups, data)
			start := time.Now()
			st, err := badgerstore.Open(data, nil)
			if err != nil {
				return nil, err
			}
			f.Memberships, err = loadScale(context.Background(), st, o.scaleUsers, o.scaleGroups, token)
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			f.LoadSeconds = time.Since(start).Seconds()
			logf("scale: loaded in %.0f s; %s on disk", f.LoadSeconds, duSize(data))
		} else {
			logf("scale: reusing the store in %s (-scale-users and -scale-groups must be what it was loaded with; its first open here includes any schema migration)", data)
		}
		start := time.Now()
		st, err := badgerstore.Open(data, nil)
		if err != nil {
			return nil, err
		}
		f.StoreOpenMs = ms(time.Since(start))
		if reuse {
			// The token of the run that loaded it is gone with that run.
			err = st.Update(context.Background(), benchTenant, func(tx storage.Tx) error {
				return tx.PutSCIMToken(&storage.SCIMToken{ID: storage.NewID(), Hash: storage.HashSecret(token), Created: time.Now()})
			})
			if err != nil {
				return nil, err
			}
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
		storageLine := "storage badger " + data
		if o.scaleMappedMemory != "" {
			storageLine += " {\n\t\tmapped_memory " + o.scaleMappedMemory + "\n\t}"
		}
		if err := measureScale(f, o, bin, backend, dir, storageLine, token); err != nil {
			return nil, fmt.Errorf("scale (badger): %w", err)
		}
		res.Badger = f
	}
	if server := postgresServer(o.pgURL); server != "" && o.pgScaleUsers > 0 {
		f, err := runScalePostgres(o, bin, backend, server)
		if err != nil {
			return nil, fmt.Errorf("scale (postgres): %w", err)
		}
		res.Postgres = f
	}
	return res, nil
}

func runScalePostgres(o options, bin, backend, server string) (*scaleFigures, error) {
	dbURL, drop, err := createDatabase(server)
	if err != nil {
		return nil, err
	}
	defer drop()
	dir, err := os.MkdirTemp("", "portcullis-bench-scale-pg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := &scaleFigures{Users: o.pgScaleUsers, Groups: pgScaleGroups(o)}
	logf("scale: loading %d users and %d groups into PostgreSQL", f.Users, f.Groups)
	ctx := context.Background()
	start := time.Now()
	st, err := postgres.Open(ctx, postgres.Options{URL: dbURL})
	if err != nil {
		return nil, err
	}
	token := randomHex(32)
	f.Memberships, err = loadScale(ctx, st, f.Users, f.Groups, token)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	f.LoadSeconds = time.Since(start).Seconds()
	start = time.Now()
	if st, err = postgres.Open(ctx, postgres.Options{URL: dbURL}); err != nil {
		return nil, err
	}
	f.StoreOpenMs = ms(time.Since(start))
	if err := st.Close(); err != nil {
		return nil, err
	}
	storage := fmt.Sprintf("storage postgres \"%s\" {\n\t\t\tkey_encryption_key %s\n\t\t}", dbURL, randomHex(32))
	if err := measureScale(f, o, bin, backend, dir, storage, token); err != nil {
		return nil, err
	}
	return f, nil
}

// measureScale starts the gateway on the loaded store and takes the
// figures over HTTP.
func measureScale(f *scaleFigures, o options, bin, backend, dir, storageLine, token string) error {
	name, _, _ := strings.Cut(strings.TrimPrefix(storageLine, "storage "), " ") // badger or postgres
	env, err := newBenchEnv(dir, backend, 1)
	if err != nil {
		return err
	}
	defer env.idp.Close()
	env.storage = storageLine
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Content-Type", "application/scim+json")
	scim := &scimClient{base: env.gatewayURL + "/scim/v2/" + benchTenant, header: h, http: &http.Client{Timeout: 2 * time.Minute}}
	gw, err := startGatewayTimed(f, bin, dir, env, scim)
	if err != nil {
		return err
	}
	defer gw.stop()
	logf("scale: gateway served SCIM from the store in %.0f ms (admin %.0f ms); the store opened alone in %.0f ms", f.StartupMs, f.AdminMs, f.StoreOpenMs)

	// A store loaded in bulk compacts when the gateway opens it (the
	// store's compactor finds level 0 due): minutes of a core's work the
	// read paths would share. A directory in service has long settled;
	// measure it settled too, and say how long that took.
	settle := time.Now()
	if err := waitForQuiet(gw.pid(), 3*time.Minute); err != nil {
		return err
	}
	f.SettleMs = ms(time.Since(settle))
	logf("scale: the gateway was quiet (background work done) after %.0f ms", f.SettleMs)

	logf("scale: %d lookups by userName eq among %d users", o.lookups, f.Users)
	if f.Filter, err = runLoad("scale-filter", scaleFilterTargeter(scim, f.Users), 1, uint64(o.lookups), o.maxRun, gw.pid()); err != nil {
		return err
	}
	if f.Filter.StatusCodes["200"] != int(f.Filter.Requests) {
		return fmt.Errorf("filter answers %v", f.Filter.StatusCodes)
	}
	if env.matchedURL != "" {
		logf("scale: control: %d requests Caddy answers itself (static respond), c=1", o.lookups)
		if f.ControlRespond, err = runLoad("scale-control", staticTarget(http.MethodGet, env.matchedURL+"/scim/v2/"+benchTenant+"/Users", nil, nil), 1, uint64(o.lookups), o.maxRun, gw.pid()); err != nil {
			return err
		}
		if f.ControlRespond.StatusCodes["404"] != int(f.ControlRespond.Requests) {
			return fmt.Errorf("control answers %v", f.ControlRespond.StatusCodes)
		}
	}

	if o.profile != "" {
		// Lookups for a little longer than the profile takes (bounded
		// by count and by -max-run).
		logf("scale: profiling the gateway over 5 s of lookups")
		go saveProfile(env.adminURL, o.profile+"-scale-"+name+"-lookups.pprof")
		if _, err := runLoad("scale-filter-profiled", scaleFilterTargeter(scim, f.Users), 1, 20000, 6*time.Second, gw.pid()); err != nil {
			return err
		}
	}

	logf("scale: GET /Users pages of 100, first and deep")
	if f.FirstPage, err = timePages(scim, gw.pid(), func(int) int { return 1 }, 100); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	deep := func(i int) int {
		if i == 0 {
			return f.Users/2 + 1
		}
		return 1 + rng.IntN(f.Users-100)
	}
	if f.DeepPage, err = timePages(scim, gw.pid(), deep, 100); err != nil {
		return err
	}

	if o.profile != "" {
		// Pages for a little longer than the profile takes.
		logf("scale: profiling the gateway over 5 s of pages")
		go saveProfile(env.adminURL, o.profile+"-scale-"+name+"-pages.pprof")
		mixed := func(i int) int {
			if i%2 == 0 {
				return 1
			}
			return deep(i)
		}
		if _, err := timePages(scim, gw.pid(), mixed, 600); err != nil {
			return err
		}
	}

	logf("scale: identity reload after an unrelated write")
	if err := measureReload(f, env, scim); err != nil {
		return err
	}
	// Read after a quiet pause: the store pages its mapped files out at
	// most once a second while in use and once more after the traffic
	// ends (see badgerstore's mapped_memory), so a reading taken at once
	// lands at a random point of that sawtooth.
	time.Sleep(3 * time.Second)
	if f.RSSMiB, err = residentMiB(gw.pid()); err != nil {
		return err
	}
	f.RSSParts, err = readRSSParts(gw.pid())
	return err
}

// startGatewayTimed starts the gateway and polls its admin endpoint and a
// SCIM read (which answers 200 only once the store is open and the tenant
// serves) every few milliseconds from the moment the process starts.
func startGatewayTimed(f *scaleFigures, bin, dir string, env *benchEnv, scim *scimClient) (*gateway, error) {
	g, err := newGateway(bin, dir, env.caddyfile())
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second}
	answers := func(u string, h http.Header) bool {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return h == nil || resp.StatusCode == http.StatusOK
	}
	start := time.Now()
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := start.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if zombie(g.pid()) {
			g.stop()
			return nil, fmt.Errorf("gateway exited; its output:\n%s", g.output.String())
		}
		if f.AdminMs == 0 && answers(env.adminURL+"/config/", nil) {
			f.AdminMs = ms(time.Since(start))
		}
		if answers(scim.base+"/Users?count=1", scim.header) {
			f.StartupMs = ms(time.Since(start))
			return g, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.stop()
	return nil, fmt.Errorf("gateway did not answer within 2 minutes; its output:\n%s", g.output.String())
}

// waitForQuiet waits until process pid uses under 5% of a CPU over half a
// second (bounded by limit).
func waitForQuiet(pid int, limit time.Duration) error {
	const window = 500 * time.Millisecond
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		before, err := cpuTime(pid)
		if err != nil {
			return err
		}
		time.Sleep(window)
		after, err := cpuTime(pid)
		if err != nil {
			return err
		}
		if after-before < window/20 {
			return nil
		}
	}
	return fmt.Errorf("the gateway was still busy %v after start-up", limit)
}

func scaleFilterTargeter(c *scimClient, n int) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		f := fmt.Sprintf(`userName eq %q`, scaleUserName(rand.IntN(n)))
		t.Method = http.MethodGet
		t.URL = c.base + "/Users?filter=" + url.QueryEscape(f)
		t.Header = c.header
		return nil
	}
}

// timePages times GET /Users?count=100&startIndex=at(i) for i < n, one at
// a time; each must return a full page. Bounded: it stops early once the
// pages have taken a minute.
func timePages(c *scimClient, pid int, at func(int) int, n int) (latencies, error) {
	var samples []time.Duration
	began := time.Now()
	cpuBefore, err := cpuTime(pid)
	if err != nil {
		return latencies{}, err
	}
	for i := 0; i < n && time.Since(began) < time.Minute; i++ {
		var page struct {
			ItemsPerPage int `json:"itemsPerPage"`
		}
		start := time.Now()
		_, raw, err := c.exchange(http.MethodGet, fmt.Sprintf("/Users?count=100&startIndex=%d", at(i)), nil)
		if err != nil {
			return latencies{}, err
		}
		samples = append(samples, time.Since(start))
		if err := json.Unmarshal(raw, &page); err != nil {
			return latencies{}, err
		}
		if page.ItemsPerPage != 100 {
			return latencies{}, fmt.Errorf("page at %d held %d users", at(i), page.ItemsPerPage)
		}
	}
	cpuAfter, err := cpuTime(pid)
	if err != nil {
		return latencies{}, err
	}
	l := summarise(samples)
	l.CPUPerRequestUs = float64((cpuAfter - cpuBefore).Microseconds()) / float64(max(len(samples), 1))
	return l, nil
}

// reloadSamples is how many write-then-request pairs measureReload times.
const reloadSamples = 200

// measureReload signs a user in (a member of three of the loaded groups),
// then alternates a SCIM PATCH of another, random user (which moves the
// tenant's generation) and two requests as the signed-in user: the first
// reloads the identity from the store, the second is a cache hit.
func measureReload(f *scaleFigures, env *benchEnv, scim *scimClient) error {
	// A store kept from an earlier run (-scale-dir) has its user already.
	if old, err := scimLookupID(scim, "/Users", fmt.Sprintf(`userName eq %q`, viewerName(0))); err == nil {
		if _, err := scim.do(http.MethodDelete, "/Users/"+old, nil, nil); err != nil {
			return err
		}
	}
	cookie, id, err := env.signIn(scim, viewerName(0), viewerName(0))
	if err != nil {
		return err
	}
	for _, g := range []int{0, f.Groups / 2, f.Groups - 1} {
		gid, err := scimLookupID(scim, "/Groups", fmt.Sprintf(`displayName eq "scale-group-%05d"`, g))
		if err != nil {
			return err
		}
		if err := scim.addMembers(gid, []string{id}); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	get := func(site string) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodGet, site+"/", nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Accept", "text/html")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("signed-in request answered %d", resp.StatusCode)
		}
		return d, nil
	}
	if _, err := get(env.gatewayURL); err != nil { // warm the connection and the cache
		return err
	}
	if _, err := get(env.plainURL); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	nonce := randomHex(4) // a kept store's users already hold the names of the last run
	before, err := readIdentityCache(env.adminURL)
	if err != nil {
		return err
	}
	var reloads, hits, plains []time.Duration
	for i := 0; i < reloadSamples; i++ {
		other, err := scimLookupID(scim, "/Users", fmt.Sprintf(`userName eq %q`, scaleUserName(rng.IntN(f.Users))))
		if err != nil {
			return err
		}
		if _, err := scim.do(http.MethodPatch, "/Users/"+other, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"displayName": fmt.Sprintf("Renamed %s %d", nonce, i)}}},
		}, nil); err != nil {
			return err
		}
		d, err := get(env.gatewayURL)
		if err != nil {
			return err
		}
		reloads = append(reloads, d)
		if d, err = get(env.gatewayURL); err != nil {
			return err
		}
		hits = append(hits, d)
		if d, err = get(env.plainURL); err != nil {
			return err
		}
		plains = append(plains, d)
	}
	after, err := readIdentityCache(env.adminURL)
	if err != nil {
		return err
	}
	f.Reload, f.Hit, f.ControlProxy, f.Loads = summarise(reloads), summarise(hits), summarise(plains), after.since(before).Loads
	return nil
}

// scimLookupID finds the id of the one resource the filter matches.
func scimLookupID(c *scimClient, path, filter string) (string, error) {
	var list struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if _, err := c.do(http.MethodGet, path+"?attributes=id&filter="+url.QueryEscape(filter), nil, &list); err != nil {
		return "", err
	}
	if len(list.Resources) != 1 {
		return "", fmt.Errorf("%s %s matched %d", path, filter, len(list.Resources))
	}
	return list.Resources[0].ID, nil
}

// duSize is the size of the files under dir, for the log.
func duSize(dir string) string {
	var total int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return fmt.Sprintf("%.0f MiB", float64(total)/(1<<20))
}

// printScaleRows adds the section to the table.
func printScaleRows(w io.Writer, s *scaleResults) {
	for _, c := range []struct {
		name string
		f    *scaleFigures
	}{{"badger", s.Badger}, {"postgres", s.Postgres}} {
		f := c.f
		if f == nil {
			continue
		}
		fmt.Fprintf(w, "scale %s: store\t%d users, %d groups\t%d memberships, loaded through the store in %.0f s\t\n", c.name, f.Users, f.Groups, f.Memberships, f.LoadSeconds)
		fmt.Fprintf(w, "scale %s: gateway start-up\t%.0f ms\tto a SCIM read answering 200 (admin %.0f ms); the store alone opens in %.0f ms; the figures below were taken once it was quiet, %.1f s later (a bulk-loaded Badger store compacts first; PostgreSQL has nothing to wait for)\t\n", c.name, f.StartupMs, f.AdminMs, f.StoreOpenMs, f.SettleMs/1000)
		fmt.Fprintf(w, "scale %s: GET /Users?filter=userName eq\tp50 %.2f ms, p99 %.2f ms\t%d lookups of random users, c=1, %.0f µs CPU/req\t\n", c.name, f.Filter.P50ms, f.Filter.P99ms, f.Filter.Requests, f.Filter.CPUPerRequestUs)
		if f.ControlRespond.Requests > 0 {
			fmt.Fprintf(w, "scale %s: control, Caddy's own respond\tp50 %.2f ms, p99 %.2f ms\tthe same gateway and client just after the lookups, c=1, %d requests: this machine's floor for any answer\t\n", c.name, f.ControlRespond.P50ms, f.ControlRespond.P99ms, f.ControlRespond.Requests)
		}
		fmt.Fprintf(w, "scale %s: GET /Users first page\tp50 %.2f ms, p99 %.2f ms\tcount=100, to the last byte, %d samples, %.0f µs CPU/req\t\n", c.name, f.FirstPage.P50ms, f.FirstPage.P99ms, f.FirstPage.Samples, f.FirstPage.CPUPerRequestUs)
		fmt.Fprintf(w, "scale %s: GET /Users deep page\tp50 %.2f ms, p99 %.2f ms\tcount=100 at random startIndex up to %d, %d samples, max %.2f ms, %.0f µs CPU/req\t\n", c.name, f.DeepPage.P50ms, f.DeepPage.P99ms, f.Users, f.DeepPage.Samples, f.DeepPage.MaxMs, f.DeepPage.CPUPerRequestUs)
		fmt.Fprintf(w, "scale %s: identity reload after a write\tp50 %.2f ms, p99 %.2f ms\tsigned-in request after a PATCH of another user, vs p50 %.2f ms, p99 %.2f ms on a hit; %d samples, %.0f store loads\t\n", c.name, f.Reload.P50ms, f.Reload.P99ms, f.Hit.P50ms, f.Hit.P99ms, f.Reload.Samples, f.Loads)
		if f.ControlProxy.Samples > 0 {
			fmt.Fprintf(w, "scale %s: control, plain reverse_proxy\tp50 %.2f ms, p99 %.2f ms\tthe same backend, timed in the reload loop: the floor of the two rows above\t\n", c.name, f.ControlProxy.P50ms, f.ControlProxy.P99ms)
		}
		fmt.Fprintf(w, "scale %s: gateway resident memory\t%.0f MiB\tafter the figures above and a 3 s pause; anon %.0f MiB, mapped files %.0f MiB\t\n", c.name, f.RSSMiB, f.RSSParts.AnonMiB, f.RSSParts.FileMiB)
	}
}

// zombie says whether the process has exited (and awaits its Wait).
func zombie(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(raw, ')')
	return i < 0 || i+2 >= len(raw) || raw[i+2] == 'Z'
}

// pgScaleGroups is the PostgreSQL store's group count: as many per user as
// the Badger store's (-scale-groups per -scale-users), or one per 100 users
// when -scale-users 0 skips that store (a ratio over zero users would ask
// for -scale-groups × -pg-scale-users groups).
func pgScaleGroups(o options) int {
	if o.scaleUsers <= 0 {
		return max(1, o.pgScaleUsers/100)
	}
	return max(1, o.scaleGroups*o.pgScaleUsers/o.scaleUsers)
}
