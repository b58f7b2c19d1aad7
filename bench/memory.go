package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The small-scale memory figure: resident memory (VmRSS) of plain Caddy
// and of the gateway with -sessions signed-in users, each a process of its
// own from the same binary, after the same proxy load (memoryRequests at
// -c), so both hold the buffers and connections serving takes. The
// difference is what Portcullis costs in memory at small scale: its store
// (Badger's memtables, caches and mappings), the identity cache and its
// code's own heap.

// memoryRequests is the proxy load each process serves before its RSS is
// read.
const memoryRequests = 10000

// memoryResults compares the two processes.
type memoryResults struct {
	MemTableSize string  `json:"memtable_size,omitempty"` // -memtable-size; empty: the default
	Sessions     int     `json:"signed_in_users"`
	Requests     int     `json:"requests_each"`
	PlainMiB     float64 `json:"plain_caddy_rss_mib"`
	GatewayMiB   float64 `json:"gateway_rss_mib"`
	OverPlainMiB float64 `json:"gateway_over_plain_mib"`
	// The parts of each RSS: anonymous memory (the Go heap, Badger's
	// arenas) and mapped files (the binary's pages, Badger's mmap'd files).
	Plain   rssParts `json:"plain_caddy_rss_parts"`
	Gateway rssParts `json:"gateway_rss_parts"`
}

// rssParts splits a process's RSS (/proc/PID/status).
type rssParts struct {
	AnonMiB float64 `json:"anon_mib"`
	FileMiB float64 `json:"file_mib"`
}

func readRSSParts(pid int) (rssParts, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssParts{}, err
	}
	var p rssParts
	for _, line := range strings.Split(string(raw), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "RssAnon":
			dst = &p.AnonMiB
		case "RssFile":
			dst = &p.FileMiB
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return rssParts{}, err
		}
		*dst = kb / 1024
	}
	return p, nil
}

// measureQuiet takes the figures of this file and idle.go, each in
// processes of its own, before the main gateway starts.
func measureQuiet(res *results, bin, backend string, o options) error {
	if o.idle > 0 && o.runs("idle") {
		logf("idle: CPU with no traffic over %s, plain Caddy and the gateway with 1 and %d tenants", o.idle, idleManyTenants)
		var err error
		if res.Idle, err = measureIdle(bin, backend, o); err != nil {
			return err
		}
	}
	if o.runs("memory") {
		logf("memory: plain Caddy vs the gateway with %d signed-in users, after %d requests each", o.sessions, memoryRequests)
		var err error
		if res.Memory, err = measureSmallMemory(bin, backend, o); err != nil {
			return err
		}
	}
	return nil
}

func measureSmallMemory(bin, backend string, o options) (*memoryResults, error) {
	res := &memoryResults{MemTableSize: o.memtable, Sessions: o.sessions, Requests: memoryRequests}
	plain, plainParts, err := plainRSS(bin, backend, o)
	if err != nil {
		return nil, fmt.Errorf("memory, plain Caddy: %w", err)
	}
	gateway, gatewayParts, err := gatewayRSS(bin, backend, o)
	if err != nil {
		return nil, fmt.Errorf("memory, gateway: %w", err)
	}
	res.PlainMiB, res.GatewayMiB, res.OverPlainMiB = plain, gateway, gateway-plain
	res.Plain, res.Gateway = plainParts, gatewayParts
	logf("memory: plain Caddy %.1f MiB (anon %.1f, files %.1f), gateway %.1f MiB (anon %.1f, files %.1f): +%.1f MiB",
		plain, plainParts.AnonMiB, plainParts.FileMiB, gateway, gatewayParts.AnonMiB, gatewayParts.FileMiB, gateway-plain)
	return res, nil
}

// plainRSS is plain Caddy's RSS after the load.
func plainRSS(bin, backend string, o options) (float64, rssParts, error) {
	dir, err := os.MkdirTemp("", "portcullis-bench-mem-")
	if err != nil {
		return 0, rssParts{}, err
	}
	defer os.RemoveAll(dir)
	caddyfile, adminURL, siteURL, err := idleConfig{backend: backend}.plainCaddyfile()
	if err != nil {
		return 0, rssParts{}, err
	}
	gw, err := startGateway(bin, dir, caddyfile, adminURL+"/config/")
	if err != nil {
		return 0, rssParts{}, err
	}
	defer gw.stop()
	tr := staticTarget(http.MethodGet, siteURL+"/", http.Header{"Accept": {"text/html"}}, nil)
	if _, err := runLoad("mem-plain", tr, o.concurrency, memoryRequests, o.maxRun, 0); err != nil {
		return 0, rssParts{}, err
	}
	return settledRSS(gw.pid(), adminURL, o.profile, "plain")
}

// gatewayRSS is the gateway's RSS after the load, as o.sessions signed-in
// users in turn.
func gatewayRSS(bin, backend string, o options) (float64, rssParts, error) {
	none := rssParts{}
	dir, err := os.MkdirTemp("", "portcullis-bench-mem-")
	if err != nil {
		return 0, none, err
	}
	defer os.RemoveAll(dir)
	env, err := newBenchEnv(dir, backend, o.sessions)
	if err != nil {
		return 0, none, err
	}
	defer env.idp.Close()
	if o.memtable != "" {
		env.storage = fmt.Sprintf("storage badger %s {\n\t\t\tmemtable_size %s\n\t\t}", filepath.Join(dir, "data"), o.memtable)
	}
	gw, err := startGateway(bin, dir, env.caddyfile(), env.adminURL+"/config/")
	if err != nil {
		return 0, none, err
	}
	defer gw.stop()
	if p, err := readRSSParts(gw.pid()); err == nil {
		logf("memory: gateway started: anon %.1f MiB, files %.1f MiB", p.AnonMiB, p.FileMiB)
	}
	scim, err := newSCIMClient(env.adminURL, env.gatewayURL, benchTenant)
	if err != nil {
		return 0, none, err
	}
	headers := make([]http.Header, o.sessions)
	for i := range headers {
		cookie, _, err := env.signIn(scim, viewerName(i), viewerName(i))
		if err != nil {
			return 0, none, err
		}
		headers[i] = http.Header{"Cookie": {cookie}, "Accept": {"text/html"}}
	}
	if p, err := readRSSParts(gw.pid()); err == nil {
		logf("memory: %d users signed in: anon %.1f MiB, files %.1f MiB", o.sessions, p.AnonMiB, p.FileMiB)
	}
	r, err := runLoad("mem-gateway", roundRobinTarget(env.gatewayURL+"/", headers), o.concurrency, memoryRequests, o.maxRun, 0)
	if err != nil {
		return 0, none, err
	}
	if r.StatusCodes["200"] != int(r.Requests) {
		return 0, none, fmt.Errorf("the Portcullis site answered %v, want only 200", r.StatusCodes)
	}
	return settledRSS(gw.pid(), env.adminURL, o.profile, "gateway")
}

// settledRSS reads RSS a moment after the load, once the connections the
// load generator closed are gone. With -profile it also saves the
// process's heap profile to PREFIX-heap-<name>.pprof.
func settledRSS(pid int, adminURL, profile, name string) (float64, rssParts, error) {
	time.Sleep(2 * time.Second)
	rss, err := residentMiB(pid)
	if err != nil {
		return 0, rssParts{}, err
	}
	parts, err := readRSSParts(pid)
	if err != nil {
		return 0, rssParts{}, err
	}
	if profile != "" {
		saveHeapProfile(adminURL, profile+"-heap-"+name+".pprof")
	}
	return rss, parts, nil
}

func saveHeapProfile(adminURL, file string) {
	savePprof(adminURL+"/debug/pprof/heap", file, "a heap profile")
}

// plainCaddyfile is plain Caddy: an admin endpoint and one reverse_proxy
// site, and its URL.
func (c idleConfig) plainCaddyfile() (caddyfile, adminURL, siteURL string, err error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", "", "", err
	}
	adminURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	siteURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	caddyfile = fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tlog {\n\t\tlevel WARN\n\t}\n}\n\n%s {\n\treverse_proxy %s\n}\n",
		ports[0], siteURL, c.backend)
	return caddyfile, adminURL, siteURL, nil
}

// printQuietRows adds the idle and small-scale memory rows.
func printQuietRows(tw *tabwriter.Writer, r *results) {
	if i := r.Idle; i != nil {
		fmt.Fprintf(tw, "idle CPU, plain Caddy\t%.2f ms/s\tno traffic, %.0f s from /proc\t\n", i.Plain, i.Seconds)
		fmt.Fprintf(tw, "idle CPU, gateway, 1 tenant\t%.2f ms/s\tBadger store; target ≤ 1 ms/s\t\n", i.OneTenant)
		fmt.Fprintf(tw, "idle CPU, gateway, %d tenants\t%.2f ms/s\tBadger store; target ≤ 2 ms/s\t\n", idleManyTenants, i.ManyTenants)
		if i.PGOneTenant != nil && i.PGManyTenant != nil {
			fmt.Fprintf(tw, "postgres: idle CPU, 1 / %d tenants\t%.2f / %.2f ms/s\tdefault poll interval\t\n", idleManyTenants, *i.PGOneTenant, *i.PGManyTenant)
		}
	}
	if m := r.Memory; m != nil {
		memtable := "default memtable"
		if m.MemTableSize != "" {
			memtable = "memtable_size " + m.MemTableSize
		}
		fmt.Fprintf(tw, "resident memory, small scale\t%.0f MiB vs %.0f MiB plain\t+%.0f MiB (target ≤ 25); %d signed-in users, %d requests each, separate processes; %s\t\n",
			m.GatewayMiB, m.PlainMiB, m.OverPlainMiB, m.Sessions, m.Requests, memtable)
	}
}
