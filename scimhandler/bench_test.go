package scimhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// benchClient keeps enough idle connections for 16 concurrent clients.
func benchClient(e *testEnv) *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}

func benchRequest(b *testing.B, c *http.Client, e *testEnv, method, url, body string, want int) []byte {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d: %s", method, url, res.StatusCode, out)
	}
	return out
}

// BenchmarkPostUser measures POST /Users through the real handler, an HTTP
// server on 127.0.0.1 and a durable Badger commit per user.
//
//	go test ./scimhandler -run '^$' -bench BenchmarkPostUser -benchtime 2000x
func BenchmarkPostUser(b *testing.B) {
	for _, concurrency := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			e := newEnv(b)
			c := benchClient(e)
			var n atomic.Int64
			body := func() string {
				i := n.Add(1)
				return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bench%d@example.com",`+
					`"name":{"givenName":"Bench","familyName":"User %d"},"emails":[{"value":"bench%d@example.com","type":"work","primary":true}],`+
					`"externalId":"ext-%d","active":true}`, i, i, i, i)
			}
			b.ReportAllocs()
			if concurrency == 1 {
				for b.Loop() {
					benchRequest(b, c, e, "POST", e.base+"/Users", body(), http.StatusCreated)
				}
			} else {
				b.SetParallelism(max(1, concurrency/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						benchRequest(b, c, e, "POST", e.base+"/Users", body(), http.StatusCreated)
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

// BenchmarkFilterUserNameEq100k measures GET /Users?filter=userName eq "x"
// with 100,000 users stored, and reports the process's memory at that size.
//
//	go test ./scimhandler -run '^$' -bench BenchmarkFilterUserNameEq100k -benchtime 5000x
func BenchmarkFilterUserNameEq100k(b *testing.B) {
	const users = 100000
	e := newEnv(b)
	ctx := context.Background()
	start := time.Now()
	now := time.Now().UTC()
	for first := 0; first < users; first += 1000 {
		err := e.badger.Update(ctx, tenant, func(tx storage.Tx) error {
			for i := first; i < first+1000; i++ {
				name := fmt.Sprintf("user%06d@example.com", i)
				attrs, _ := json.Marshal(map[string]any{
					"userName": name, "active": true, "externalId": "ext-" + strconv.Itoa(i),
					"name":   map[string]any{"givenName": "User", "familyName": strconv.Itoa(i)},
					"emails": []any{map[string]any{"value": name, "type": "work", "primary": true}},
				})
				if err := tx.PutUser(&storage.User{ID: storage.NewID(), UserName: name, ExternalID: "ext-" + strconv.Itoa(i),
					Emails: []string{name}, Active: true, Source: storage.SourceSCIM, Attributes: attrs,
					Created: now, Modified: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d users in %v", users, time.Since(start).Round(time.Millisecond))
	c := benchClient(e)
	var i int
	b.ReportAllocs()
	for b.Loop() {
		i = (i + 7919) % users
		name := fmt.Sprintf("user%06d@example.com", i)
		out := benchRequest(b, c, e, "GET", e.base+"/Users?filter="+q(`userName eq "`+strings.ToUpper(name)+`"`), "", http.StatusOK)
		if !bytes.Contains(out, []byte(`"totalResults":1`)) {
			b.Fatalf("not found: %s", out)
		}
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
	if rss := residentMiB(); rss > 0 {
		b.ReportMetric(rss, "MiB-RSS")
	}
}

// residentMiB reads the process's resident set size (Linux).
func residentMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
