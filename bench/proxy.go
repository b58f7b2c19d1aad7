package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// The proxy comparison measures what Portcullis adds to Caddy's
// reverse_proxy, as the issue measures it: the gateway's CPU time per
// request (from /proc) at a fixed request rate (an open loop: requests are
// sent on schedule whatever the answers, so every site gets the same load),
// in rounds that alternate between the sites of one gateway process:
//
//   - portcullis: `handle` blocks for SCIM, sign-in and the app, identity
//     (require viewer) and reverse_proxy;
//   - matched: the same `handle` layout and a reverse_proxy adding as many
//     static headers (header_up) as Portcullis sets identity headers, so the
//     ratio to it isolates Portcullis itself;
//   - plain: a bare reverse_proxy, as users run one.
//
// All three get the same requests (the signed-in users' cookies and
// headers in turn) and proxy to the same backend through the same upstream
// keep-alive settings.

// identityHeaders is how many identity headers Portcullis sets for the
// proxy runs' users (user, email, name, groups, role: each has a display
// name and a group), and so the matched site's static header count.
const identityHeaders = 5

// matchedSite is the Caddyfile block of the matched plain site ("" when
// the environment has none).
func (e *benchEnv) matchedSite(transport string) string {
	if e.matchedURL == "" {
		return ""
	}
	return fmt.Sprintf(`
%[1]s {
	handle /scim/v2/%[2]s/* {
		respond 404
	}
	handle /sso/* {
		respond 404
	}
	handle {
		reverse_proxy %[3]s {
			header_up X-Remote-User viewer000@bench.example
			header_up X-Remote-Email viewer000@bench.example
			header_up X-Remote-Name "Bench viewer000"
			header_up X-Remote-Groups bench-viewers
			header_up X-Remote-Role viewer
			%[4]s
		}
	}
}
`, e.matchedURL, benchTenant, e.backend, transport)
}

// proxyResults compares the sites of one gateway process. Every
// loadResult is the median of its site's open-loop runs.
type proxyResults struct {
	// Rate is the fixed request rate of every open-loop run.
	Rate   float64 `json:"rate_per_second"`
	Rounds int     `json:"rounds"`
	// IdentityHeaders is the number of identity headers Portcullis set,
	// and of static headers the matched site adds.
	IdentityHeaders int        `json:"identity_headers"`
	Portcullis      loadResult `json:"portcullis"`
	// Matched is the plain site with Portcullis's handle layout and as
	// many static headers (absent when the environment has no such site).
	Matched *loadResult `json:"matched_plain,omitempty"`
	Plain   loadResult  `json:"plain"`

	// CPURatio is Portcullis's CPU per request over the matched site's
	// (the plain site's without one): the figure that decides. Min and
	// max are the per-round ratios' extremes.
	CPURatio    float64 `json:"cpu_per_request_ratio"`
	CPURatioMin float64 `json:"cpu_per_request_ratio_min"`
	CPURatioMax float64 `json:"cpu_per_request_ratio_max"`
	// CPURatioPlain is Portcullis's CPU per request over the bare plain
	// site's, as users compare.
	CPURatioPlain    float64 `json:"cpu_per_request_ratio_vs_bare_plain"`
	CPURatioPlainMin float64 `json:"cpu_per_request_ratio_vs_bare_plain_min"`
	CPURatioPlainMax float64 `json:"cpu_per_request_ratio_vs_bare_plain_max"`

	// ThroughputRatio is Portcullis's closed-loop throughput over the
	// bare plain site's (one closed-loop run each after the rounds; 0
	// when skipped).
	ThroughputRatio float64      `json:"throughput_ratio"`
	Closed          []loadResult `json:"closed_loop,omitempty"` // portcullis, plain
	Runs            []loadResult `json:"runs"`                  // by round: portcullis, matched, plain
}

// proxySite is one site of the comparison.
type proxySite struct {
	name string
	url  string
}

// compareProxy signs the users in, warms every site, then runs o.rounds
// rounds of one open-loop run per site.
func (e *benchEnv) compareProxy(gw *gateway, scim *scimClient, o options) (*proxyResults, error) {
	// Many signed-in users, each request as the next one, so the identity
	// cache holds as many entries as a real gateway's would. Each is in a
	// group, so every identity header is set.
	headers := make([]http.Header, o.sessions)
	ids := make([]string, o.sessions)
	for i := range headers {
		cookie, id, err := e.signIn(scim, viewerName(i), viewerName(i))
		if err != nil {
			return nil, err
		}
		ids[i] = id
		headers[i] = http.Header{
			"Cookie":          {"_ga=GA1.2.3456789.1234567890; " + cookie + "; theme=dark"},
			"Accept":          {"text/html,application/xhtml+xml"},
			"Accept-Language": {"en-GB,en;q=0.5"},
			"User-Agent":      {"portcullis-bench"},
		}
	}
	group, err := scim.createGroup("bench-viewers")
	if err != nil {
		return nil, err
	}
	if err := scim.addMembers(group, ids); err != nil {
		return nil, err
	}

	sites := []proxySite{{"portcullis", e.gatewayURL}}
	if e.matchedURL != "" {
		sites = append(sites, proxySite{"matched", e.matchedURL})
	}
	sites = append(sites, proxySite{"plain", e.plainURL})
	rate := max(o.rate, 1)
	perRun := time.Duration(float64(o.proxyReqs) / rate * float64(time.Second))

	// Warm every site: connections, caches, the upstream pool.
	for _, s := range sites {
		if _, err := runOpenLoad("warm-"+s.name, roundRobinTarget(s.url+"/", headers), rate, perRun/4, 0); err != nil {
			return nil, fmt.Errorf("warming %s: %w", s.name, err)
		}
	}
	res := &proxyResults{Rate: rate, Rounds: o.rounds, IdentityHeaders: identityHeaders}
	bySite := make([][]loadResult, len(sites))
	for round := 0; round < o.rounds; round++ {
		for i, s := range sites {
			if round == 0 && o.profile != "" && s.name != "plain" {
				suffix := "-proxy.pprof"
				if s.name == "matched" {
					suffix = "-plain.pprof"
				}
				go saveProfileFor(e.adminURL, o.profile+suffix, o.profileSeconds)
			}
			r, err := runOpenLoad(s.name, roundRobinTarget(s.url+"/", headers), rate, perRun, gw.pid())
			if err != nil {
				return nil, err
			}
			if r.StatusCodes["200"] != int(r.Requests) {
				return nil, fmt.Errorf("%s site answered %v, want only 200 (errors %v)", s.name, r.StatusCodes, r.Errors)
			}
			bySite[i] = append(bySite[i], r)
			res.Runs = append(res.Runs, r)
		}
	}
	res.Portcullis = medianRun(bySite[0])
	res.Plain = medianRun(bySite[len(sites)-1])
	res.CPURatioPlain, res.CPURatioPlainMin, res.CPURatioPlainMax = cpuRatios(bySite[0], bySite[len(sites)-1])
	if len(sites) == 3 {
		m := medianRun(bySite[1])
		res.Matched = &m
		res.CPURatio, res.CPURatioMin, res.CPURatioMax = cpuRatios(bySite[0], bySite[1])
	} else {
		res.CPURatio, res.CPURatioMin, res.CPURatioMax = res.CPURatioPlain, res.CPURatioPlainMin, res.CPURatioPlainMax
	}

	if o.closedRequests > 0 {
		// Throughput needs a closed loop (as fast as the answers come).
		for _, s := range []proxySite{sites[0], sites[len(sites)-1]} {
			r, err := runLoad(s.name+"-closed", roundRobinTarget(s.url+"/", headers), o.concurrency, uint64(o.closedRequests), o.maxRun, gw.pid())
			if err != nil {
				return nil, err
			}
			res.Closed = append(res.Closed, r)
		}
		res.ThroughputRatio = ratio(res.Closed[0].PerSecond, res.Closed[1].PerSecond)
	}
	return res, nil
}

// cpuRatios is the ratio of the medians of a's and b's CPU per request,
// and the least and greatest ratio of one round's runs.
func cpuRatios(a, b []loadResult) (median, lo, hi float64) {
	median = ratio(medianRun(a).CPUPerRequestUs, medianRun(b).CPUPerRequestUs)
	for i := range a {
		r := ratio(a[i].CPUPerRequestUs, b[i].CPUPerRequestUs)
		if i == 0 || r < lo {
			lo = r
		}
		if i == 0 || r > hi {
			hi = r
		}
	}
	return median, lo, hi
}

// medianRun takes each figure's median over the runs.
func medianRun(runs []loadResult) loadResult {
	med := func(get func(loadResult) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	out := runs[0]
	out.PerSecond = med(func(r loadResult) float64 { return r.PerSecond })
	out.P50ms = med(func(r loadResult) float64 { return r.P50ms })
	out.P99ms = med(func(r loadResult) float64 { return r.P99ms })
	out.CPUPerRequestUs = med(func(r loadResult) float64 { return r.CPUPerRequestUs })
	out.Seconds = med(func(r loadResult) float64 { return r.Seconds })
	return out
}

// printProxyRows adds the proxy comparison to the table.
func printProxyRows(tw io.Writer, p *proxyResults, o options) {
	if m := p.Matched; m != nil {
		fmt.Fprintf(tw, "proxy CPU per request\t%.1f µs vs %.1f µs matched plain\tratio %.3f [%.2f–%.2f over rounds] (decides): same handle layout, %d static header_up\t\n",
			p.Portcullis.CPUPerRequestUs, m.CPUPerRequestUs, p.CPURatio, p.CPURatioMin, p.CPURatioMax, p.IdentityHeaders)
	}
	fmt.Fprintf(tw, "proxy CPU per request, bare plain\t%.1f µs vs %.1f µs plain\tratio %.3f [%.2f–%.2f over rounds]: plain reverse_proxy as users run it\t\n",
		p.Portcullis.CPUPerRequestUs, p.Plain.CPUPerRequestUs, p.CPURatioPlain, p.CPURatioPlainMin, p.CPURatioPlainMax)
	fmt.Fprintf(tw, "proxy p50 / p99 at %.0f/s\t%.2f / %.2f ms vs %.2f / %.2f ms plain\topen loop\t\n", p.Rate, p.Portcullis.P50ms, p.Portcullis.P99ms, p.Plain.P50ms, p.Plain.P99ms)
	if len(p.Closed) == 2 {
		fmt.Fprintf(tw, "proxy throughput (closed loop)\t%.0f/s vs %.0f/s plain\tratio %.2f; c=%d, %d requests each\t\n", p.Closed[0].PerSecond, p.Closed[1].PerSecond, p.ThroughputRatio, o.concurrency, o.closedRequests)
	}
	fmt.Fprintf(tw, "  (runs)\t%d rounds × %.0f s at %.0f req/s per site\topen loop, alternating, medians; %d signed-in users in turn\t\n", p.Rounds, p.Portcullis.Seconds, p.Rate, o.sessions)
}
