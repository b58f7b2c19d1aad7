package main

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
)

func goEnv() (string, int) {
	v, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version(), runtime.NumCPU()
	}
	return strings.TrimSpace(string(v)), runtime.NumCPU()
}

// printTable writes the results as one aligned table.
func printTable(w io.Writer, r *results, o options) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Portcullis benchmark\t%s, %d CPUs, %s\t\n", r.GoVersion, r.CPUs, r.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintln(tw, "measure\tvalue\tdetail\t")
	fmt.Fprintln(tw, "-------\t-----\t------\t")
	printQuietRows(tw, r)
	if o.only != "" && !o.runs("proxy") {
		if r.Scale != nil {
			printScaleRows(tw, r.Scale)
		}
		tw.Flush()
		return
	}
	if p := r.Proxy; p != nil {
		printProxyRows(tw, p, o)
	}
	if o.only != "" {
		// The rows below are of the full run only.
		if r.Scale != nil {
			printScaleRows(tw, r.Scale)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "SCIM POST /Users c=1\t%.0f/s\tp50 %.2f ms, p99 %.2f ms, %.0f µs CPU/req\t\n", r.SCIMPost1.PerSecond, r.SCIMPost1.P50ms, r.SCIMPost1.P99ms, r.SCIMPost1.CPUPerRequestUs)
	fmt.Fprintf(tw, "SCIM POST /Users c=%d\t%.0f/s\tp50 %.2f ms, p99 %.2f ms, %.0f µs CPU/req\t\n", o.concurrency, r.SCIMPost16.PerSecond, r.SCIMPost16.P50ms, r.SCIMPost16.P99ms, r.SCIMPost16.CPUPerRequestUs)
	fmt.Fprintf(tw, "SCIM PATCH add-member c=1\t%.0f/s\tgroup of %d+ members, p50 %.2f ms, p99 %.2f ms\t\n", r.PatchAdd1.PerSecond, r.GroupSize, r.PatchAdd1.P50ms, r.PatchAdd1.P99ms)
	fmt.Fprintf(tw, "SCIM PATCH add-member c=%d\t%.0f/s\tsame group, p50 %.2f ms, p99 %.2f ms\t\n", o.concurrency, r.PatchAdd16.PerSecond, r.PatchAdd16.P50ms, r.PatchAdd16.P99ms)
	fmt.Fprintf(tw, "GET /Users?filter=userName eq\tp50 %.2f ms, p99 %.2f ms\t%d users stored, %d lookups\t\n", r.Filter.P50ms, r.Filter.P99ms, r.UsersStored, r.Filter.Requests)
	fmt.Fprintf(tw, "gateway resident memory\t%.0f MiB\t%d users, %d groups (loaded in %.0f s); anon %.0f MiB, mapped files %.0f MiB\t\n", r.RSSMiB, r.UsersStored, r.Groups, r.LoadSeconds, r.RSSParts.AnonMiB, r.RSSParts.FileMiB)
	if a := r.Anonymous; a != nil {
		fmt.Fprintf(tw, "anonymous /sso/login\t%.0f/s\t%d requests, %.0f µs CPU/req\t\n", a.Starts.PerSecond, a.Starts.Requests, a.Starts.CPUPerRequestUs)
		fmt.Fprintf(tw, "garbage OIDC callbacks\t%.0f/s\t%d requests, %.0f µs CPU/req, answers %v\t\n", float64(a.Callbacks.Requests)/max(a.Callbacks.Seconds, 1e-9), a.Callbacks.Requests, a.Callbacks.CPUPerRequestUs, a.Callbacks.StatusCodes)
		fmt.Fprintf(tw, "store growth from both\t%.0f KiB\tstore was %.0f MiB; must stay under 64 KiB\t\n", a.StoreGrowthKiB, a.StoreBeforeMiB)
		fmt.Fprintf(tw, "signed-in p99 during anonymous\t%.2f ms\tvs %.2f ms during as many plain-site requests (control), %.2f ms alone; c=2, %d requests each\t\n", a.SignedInDuring.P99ms, a.SignedInDuringPlain.P99ms, a.SignedInAlone.P99ms, a.SignedInAlone.Requests)
	}
	if d := r.Deprovision; d != nil {
		fmt.Fprintf(tw, "active:false to first refusal\t%.2f ms\tfrom PATCH sent; %.2f ms after its 2xx\t\n", d.FromSendMs, d.AfterAckMs)
	}
	if l := r.LiveClose; l != nil {
		fmt.Fprintf(tw, "active:false to WebSocket closed\tp50 %.0f ms, max %.0f ms\tafter the PATCH's 2xx, %d samples; p50 %.0f ms from PATCH sent\t\n", l.P50ms, l.MaxMs, l.Samples, l.FromSend)
	}
	if p := r.Postgres; p != nil {
		printPostgresRows(tw, p, o)
	}
	if r.Scale != nil {
		printScaleRows(tw, r.Scale)
	}
	tw.Flush()
	var codes []string
	runs := []loadResult{r.SCIMPost1, r.SCIMPost16, r.PatchAdd1, r.PatchAdd16, r.Filter}
	if p := r.Postgres; p != nil {
		runs = append(runs, p.SCIMPost1, p.SCIMPost16, p.Filter)
	}
	for _, lr := range runs {
		for c, n := range lr.StatusCodes {
			if !strings.HasPrefix(c, "2") {
				codes = append(codes, fmt.Sprintf("%s×%d", c, n))
			}
		}
	}
	if len(codes) > 0 {
		fmt.Fprintf(w, "non-2xx answers during SCIM runs: %s\n", strings.Join(codes, " "))
	}
}

// printPostgresRows adds the PostgreSQL column as rows labelled postgres.
func printPostgresRows(tw io.Writer, p *postgresResults, o options) {
	fmt.Fprintln(tw, "postgres (2 replicas, one database)\t\t\t")
	if x := p.Proxy; x != nil {
		fmt.Fprintf(tw, "postgres: proxy CPU per request\t%.1f µs vs %.1f µs plain\tratio %.2f vs matched plain, %.2f vs bare plain; %d rounds at %.0f/s\t\n", x.Portcullis.CPUPerRequestUs, x.Plain.CPUPerRequestUs, x.CPURatio, x.CPURatioPlain, o.rounds, x.Rate)
		if c := p.ProxyCache; c != nil {
			fmt.Fprintf(tw, "postgres: identity cache in proxy runs\t%.0f hits, %.0f store reads\treplica A, sign-ins and warm-up included\t\n", c.Hits, c.Loads)
		}
		fmt.Fprintf(tw, "postgres: proxy throughput\t%.0f/s vs %.0f/s plain\tratio %.2f; p99 %.2f ms vs %.2f ms\t\n", x.Portcullis.PerSecond, x.Plain.PerSecond, x.ThroughputRatio, x.Portcullis.P99ms, x.Plain.P99ms)
	}
	fmt.Fprintf(tw, "postgres: SCIM POST /Users c=1\t%.0f/s\tp50 %.2f ms, p99 %.2f ms, %.0f µs CPU/req\t\n", p.SCIMPost1.PerSecond, p.SCIMPost1.P50ms, p.SCIMPost1.P99ms, p.SCIMPost1.CPUPerRequestUs)
	fmt.Fprintf(tw, "postgres: SCIM POST /Users c=%d\t%.0f/s\tp50 %.2f ms, p99 %.2f ms, %.0f µs CPU/req\t\n", o.concurrency, p.SCIMPost16.PerSecond, p.SCIMPost16.P50ms, p.SCIMPost16.P99ms, p.SCIMPost16.CPUPerRequestUs)
	fmt.Fprintf(tw, "postgres: GET /Users?filter=userName eq\tp50 %.2f ms, p99 %.2f ms\t%d users stored (loaded in %.0f s), %d lookups\t\n", p.Filter.P50ms, p.Filter.P99ms, p.UsersStored, p.LoadSeconds, p.Filter.Requests)
	fmt.Fprintf(tw, "postgres: gateway resident memory\t%.0f MiB\treplica A, %d users stored\t\n", p.RSSMiB, p.UsersStored)
	if v := p.Revocation; v != nil {
		fmt.Fprintf(tw, "postgres: deactivate on B to refusal on A\tp50 %.1f ms, p99 %.1f ms\tafter B's 2xx, %d samples, max %.1f ms; p50 %.1f ms from PATCH sent; refused with %s; poll fallback %s\t\n", v.P50ms, v.P99ms, v.Samples, v.MaxMs, v.FromSendP50ms, sortedCodes(v.RefusedWith), v.PollInterval)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
