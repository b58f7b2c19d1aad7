// Command bench measures Portcullis against plain Caddy on this machine and
// prints one table (and saves it as JSON, so runs can be compared):
//
//	go run ./bench
//
// It builds the gateway from ./cmd/caddy, starts it with a Caddyfile of its
// own (everything on 127.0.0.1, the store in a temporary directory), starts
// a small backend, and drives load with vegeta (a Go load generator
// library), bounded both in requests and in time.
//
// The figure that decides the proxy comparison is the gateway's CPU time per
// request (user+system, from /proc/PID/stat): on a shared 2-core machine
// throughput swings by ±30% between identical runs, CPU per request much
// less. Both sites of the one gateway process proxy to the same backend with
// the same upstream keep-alive pool, and the runs alternate.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

type options struct {
	users       int
	groups      int
	members     int
	proxyReqs   int
	rounds      int
	concurrency int
	scimPosts   int
	patches     int
	lookups     int
	maxRun      time.Duration
	out         string
	keep        bool
	skipProxy   bool
	profile     string
	sessions    int
	anonymous   int
	pgURL       string
	pgUsers     int
	// The quiet figures (idle.go, memory.go).
	idle     time.Duration
	memtable string
	// The Scale section (scale.go).
	scaleUsers   int
	scaleGroups  int
	pgScaleUsers int
	scaleDir     string
	// scaleMappedMemory is the Scale gateway's mapped_memory ("": default).
	scaleMappedMemory string
	// rate is the open-loop request rate of the proxy runs, and
	// closedRequests the requests of their closed-loop throughput runs.
	rate           float64
	closedRequests int
	// only, when set, runs just the named parts (comma-separated).
	only string
	// profileSeconds is the length of the proxy runs' CPU profiles.
	profileSeconds int
}

// runs says whether the part named part is to run (-only).
func (o options) runs(part string) bool {
	if o.only == "" {
		return true
	}
	for _, p := range strings.Split(o.only, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

// results is the table, as saved in JSON.
type results struct {
	Started     time.Time         `json:"started"`
	GoVersion   string            `json:"go_version"`
	CPUs        int               `json:"cpus"`
	Options     map[string]string `json:"flags"`
	Proxy       *proxyResults
	SCIMPost1   loadResult         `json:"scim_post_users_c1"`
	SCIMPost16  loadResult         `json:"scim_post_users_c16"`
	PatchAdd1   loadResult         `json:"scim_patch_add_member_c1"`
	PatchAdd16  loadResult         `json:"scim_patch_add_member_c16"`
	GroupSize   int                `json:"group_size_before_patches"`
	Filter      loadResult         `json:"filter_username_eq"`
	UsersStored int                `json:"users_stored"`
	Groups      int                `json:"groups_stored"`
	LoadSeconds float64            `json:"load_seconds"`
	RSSMiB      float64            `json:"rss_mib"`
	RSSParts    rssParts           `json:"rss_parts"`
	Deprovision *deprovisionResult `json:"deprovision,omitempty"`
	LiveClose   *liveCloseResult   `json:"websocket_close_on_deactivation,omitempty"`
	Anonymous   *anonymousResult   `json:"anonymous_signin,omitempty"`
	Postgres    *postgresResults   `json:"postgres,omitempty"`
	Scale       *scaleResults      `json:"scale,omitempty"`
	Idle        *idleResults       `json:"idle_cpu,omitempty"`
	Memory      *memoryResults     `json:"memory_small,omitempty"`
}

func main() {
	var o options
	flag.IntVar(&o.users, "users", 100000, "users to store before the lookup and memory figures")
	flag.IntVar(&o.groups, "groups", 1000, "groups to store before the memory figure")
	flag.IntVar(&o.members, "members", 10000, "members of the group the add-member PATCHes go to")
	flag.IntVar(&o.proxyReqs, "proxy-requests", 20000, "requests per proxy run (sent at -rate)")
	flag.Float64Var(&o.rate, "rate", 1500, "requests per second of the open-loop proxy runs")
	flag.IntVar(&o.rounds, "rounds", 6, "alternating proxy rounds (one open-loop run per site each)")
	flag.IntVar(&o.closedRequests, "closed-requests", 5000, "requests of the closed-loop proxy throughput runs, at -c (0: skip)")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 5, "length of the CPU profiles of the proxy runs (-profile); keep it under a run's length")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: idle, memory (plain Caddy vs 50 signed-in users), proxy, "+onlySCIMPost+" (the POST /Users runs alone, on Badger and, with -postgres, PostgreSQL), scale; default: everything")
	flag.IntVar(&o.sessions, "sessions", 50, "signed-in users the Portcullis proxy runs take turns as")
	flag.IntVar(&o.concurrency, "c", 16, "concurrency of the proxy runs and of the concurrent SCIM runs")
	flag.IntVar(&o.scimPosts, "scim-posts", 1000, "POST /Users requests per SCIM throughput run")
	flag.IntVar(&o.patches, "patches", 500, "add-member PATCHes per run")
	flag.IntVar(&o.anonymous, "anonymous", 10000, "anonymous sign-in starts, and as many garbage OIDC callbacks, sent to measure that they leave the store as it was (0: skip)")
	flag.IntVar(&o.lookups, "lookups", 2000, "userName eq lookups")
	flag.DurationVar(&o.maxRun, "max-run", 60*time.Second, "upper bound on any one load run")
	flag.StringVar(&o.out, "out", "", "where to save the JSON (default bench/results/<time>.json)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (store, Caddyfile, logs)")
	flag.BoolVar(&o.skipProxy, "skip-proxy", false, "skip the proxy comparison")
	flag.StringVar(&o.profile, "profile", "", "save 5 s CPU profiles of the gateway, taken during the first Portcullis and plain proxy runs and the concurrent SCIM POST run, to PREFIX-proxy.pprof, PREFIX-plain.pprof and PREFIX-scim-post.pprof (and, over 5 s of Scale lookups and of Scale pages, PREFIX-scale-STORE-lookups.pprof and PREFIX-scale-STORE-pages.pprof, STORE badger or postgres)")
	flag.StringVar(&o.pgURL, "postgres", "", "also measure the PostgreSQL store (and two replicas on it): a postgres:// URL of a server where the harness may create and drop a database (default $"+testDatabaseEnv+"; neither: Badger only)")
	flag.IntVar(&o.pgUsers, "pg-users", 20000, "users to store in PostgreSQL before the lookup figure (loading through SCIM is slower there)")
	flag.IntVar(&o.scaleUsers, "scale-users", 1000000, "users of the Scale section's Badger store, loaded through the store (0: skip it)")
	flag.IntVar(&o.scaleGroups, "scale-groups", 10000, "groups of the Scale section's Badger store (PostgreSQL's get as many per user)")
	flag.IntVar(&o.pgScaleUsers, "pg-scale-users", 100000, "users of the Scale section's PostgreSQL store (0: skip it)")
	flag.StringVar(&o.scaleDir, "scale-dir", "", "reuse the Scale section's Badger store kept by an earlier -keep run in this directory (for iterating; its size must match -scale-users/-scale-groups)")
	flag.StringVar(&o.scaleMappedMemory, "scale-mapped-memory", "", "mapped_memory of the Scale section's Badger gateway (e.g. off; default: the store's default)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "window of the idle CPU figures (0: skip them)")
	flag.StringVar(&o.memtable, "memtable-size", "", "memtable_size of the small-scale memory figure's gateway (default: the store's default)")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	o.sessions = max(o.sessions, 1)
	if o.members+2*o.patches > o.users {
		return fmt.Errorf("-users (%d) must be at least -members + 2×-patches (%d)", o.users, o.members+2*o.patches)
	}
	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		logf("keeping %s", dir)
	}
	flags := map[string]string{}
	flag.VisitAll(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })
	if flags["postgres"] != "" {
		flags["postgres"] = redactedURL(flags["postgres"])
	}
	res := &results{Started: time.Now().UTC(), Options: flags}
	res.GoVersion, res.CPUs = goEnv()

	logf("building ./cmd/caddy")
	bin, err := buildGateway(dir)
	if err != nil {
		return err
	}
	backend, stopBackend, err := startBackend()
	if err != nil {
		return err
	}
	defer stopBackend()
	if err := measureQuiet(res, bin, backend, o); err != nil {
		return err
	}
	if o.only != "" && !o.runs("proxy") && !o.runs(onlySCIMPost) {
		// Only parts that start gateways of their own.
		if o.runs("scale") && o.scaleUsers+o.pgScaleUsers > 0 {
			if res.Scale, err = runScale(o, bin, backend); err != nil {
				return err
			}
		}
		printTable(os.Stdout, res, o)
		return saveJSON(res, o.out)
	}

	env, err := newBenchEnv(dir, backend, max(o.sessions, 1))
	if err != nil {
		return err
	}
	gw, err := startGateway(bin, dir, env.caddyfile(), env.adminURL+"/config/")
	if err != nil {
		return err
	}
	defer gw.stop()
	scim, err := newSCIMClient(env.adminURL, env.gatewayURL, benchTenant)
	if err != nil {
		return err
	}

	if o.only == onlySCIMPost {
		return runSCIMPostOnly(o, res, gw, env, scim, bin, backend)
	}
	if o.runs(onlySCIMPost) && o.only != "" {
		return fmt.Errorf("-only %s runs alone", onlySCIMPost)
	}

	if !o.skipProxy && o.runs("proxy") {
		logf("proxy: Portcullis vs matched and bare plain reverse_proxy, %d rounds × %d requests at %.0f/s", o.rounds, o.proxyReqs, o.rate)
		if res.Proxy, err = env.compareProxy(gw, scim, o); err != nil {
			return err
		}
	}
	if o.only != "" {
		// The parts below are of the full run only.
		gw.stop()
		if o.runs("scale") && o.scaleUsers+o.pgScaleUsers > 0 {
			if res.Scale, err = runScale(o, bin, backend); err != nil {
				return err
			}
		}
		printTable(os.Stdout, res, o)
		return saveJSON(res, o.out)
	}

	var next atomic.Uint64
	if err := measurePosts(o, res, gw, env, scim, &next); err != nil {
		return err
	}

	logf("SCIM: storing %d users and %d groups", o.users, o.groups)
	start := time.Now()
	for stored := int(next.Load()); stored < o.users; stored = int(next.Load()) {
		// Bounded runs of the same load, until the count is reached.
		if _, err := runLoad("fill", scim.userTargeter(&next), o.concurrency, uint64(min(20000, o.users-stored)), 5*time.Minute, 0); err != nil {
			return err
		}
	}
	res.UsersStored = int(next.Load())
	ids, err := scim.userIDs(o.members + 2*o.patches)
	if err != nil {
		return err
	}
	bigGroup, err := scim.createGroup("bench-big")
	if err != nil {
		return err
	}
	if err := scim.addMembers(bigGroup, ids[:o.members]); err != nil {
		return err
	}
	for i := 1; i < o.groups; i++ {
		if _, err := scim.createGroup(fmt.Sprintf("bench-group-%04d", i)); err != nil {
			return err
		}
	}
	res.Groups = o.groups
	res.LoadSeconds = time.Since(start).Seconds()
	res.GroupSize = o.members

	logf("SCIM: PATCH add-member on a group of %d members", o.members)
	rest := ids[o.members:]
	if res.PatchAdd1, err = runLoad("patch-c1", scim.addMemberTargeter(bigGroup, rest[:o.patches]), 1, uint64(o.patches), o.maxRun, gw.pid()); err != nil {
		return err
	}
	if res.PatchAdd16, err = runLoad("patch-c16", scim.addMemberTargeter(bigGroup, rest[o.patches:]), o.concurrency, uint64(o.patches), o.maxRun, gw.pid()); err != nil {
		return err
	}

	logf("SCIM: %d lookups by userName eq among %d users", o.lookups, res.UsersStored)
	if res.Filter, err = runLoad("filter", scim.filterTargeter(uint64(res.UsersStored)), 1, uint64(o.lookups), o.maxRun, gw.pid()); err != nil {
		return err
	}
	if o.anonymous > 0 {
		logf("sign-in: %d anonymous starts and %d garbage callbacks at c=%d", o.anonymous, o.anonymous, o.concurrency)
		if env.bystanderCookie, _, err = env.signIn(scim, bystanderName, bystanderName); err != nil {
			return err
		}
		if res.Anonymous, err = env.measureAnonymous(gw.pid(), o.anonymous, o.concurrency, o); err != nil {
			return err
		}
	}
	if res.RSSMiB, err = residentMiB(gw.pid()); err != nil {
		return err
	}
	if res.RSSParts, err = readRSSParts(gw.pid()); err != nil {
		return err
	}

	if !o.skipProxy {
		logf("deprovisioning: SCIM active:false to the first refused request")
		if res.Deprovision, err = env.measureDeprovision(scim); err != nil {
			return err
		}
		logf("live connections: SCIM active:false to the close of an open WebSocket, %d samples", liveCloseSamples)
		if res.LiveClose, err = env.measureLiveClose(scim); err != nil {
			return err
		}
	}

	if postgresServer(o.pgURL) != "" {
		gw.stop() // the Badger gateway is done; leave the machine to the replicas
		logf("postgres: the same configuration on PostgreSQL, with a second replica")
		if res.Postgres, err = runPostgres(o, bin, backend); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}

	gw.stop()
	logf("scale: a store of %d users (PostgreSQL: %d), loaded through the store", o.scaleUsers, o.pgScaleUsers)
	if res.Scale, err = runScale(o, bin, backend); err != nil {
		return err
	}

	printTable(os.Stdout, res, o)
	return saveJSON(res, o.out)
}

func saveJSON(res *results, out string) error {
	if out == "" {
		out = filepath.Join("bench", "results", res.Started.Format("20060102T150405Z")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return err
	}
	logf("saved %s", out)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
