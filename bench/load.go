package main

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadResult is what one bounded run of the load generator measured.
type loadResult struct {
	Requests    uint64         `json:"requests"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"` // successful requests per second
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	Success     float64        `json:"success_ratio"`
	StatusCodes map[string]int `json:"status_codes"`
	Errors      []string       `json:"errors,omitempty"`
	// CPUPerRequestUs is the gateway process's user+system CPU time over
	// the run divided by the requests it answered, in microseconds.
	CPUPerRequestUs float64 `json:"cpu_per_request_us,omitempty"`
}

// runLoad drives a closed loop of `concurrency` workers (vegeta with an
// unbounded rate and as many workers as connections) until maxRequests
// have been sent or maxDuration has passed, whichever comes first. With
// pid > 0 it also measures that process's CPU time over the run.
func runLoad(name string, tr vegeta.Targeter, concurrency int, maxRequests uint64, maxDuration time.Duration, pid int) (loadResult, error) {
	atk := vegeta.NewAttacker(
		vegeta.Workers(uint64(concurrency)),
		vegeta.MaxWorkers(uint64(concurrency)),
		vegeta.Connections(concurrency),
		vegeta.MaxConnections(concurrency),
		vegeta.KeepAlive(true),
		vegeta.Timeout(30*time.Second),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.HTTP2(false),
	)
	pacer := countPacer{max: maxRequests}
	return attack(name, atk, tr, pacer, maxDuration, pid)
}

// openLoopInFlight bounds the requests an open-loop run has in flight (and
// its connections): when the gateway stalls (a shared machine), the run
// falls behind its schedule rather than opening connections without end.
const openLoopInFlight = 512

// runOpenLoad sends requests at a fixed rate for duration (an open loop:
// on schedule, whatever the answers; vegeta adds workers as needed, up to
// openLoopInFlight), and waits for the answers. Its connections are closed
// at the end, so runs do not pile up idle connections. With pid > 0 it also
// measures that process's CPU time over the run, from /proc.
func runOpenLoad(name string, tr vegeta.Targeter, rate float64, duration time.Duration, pid int) (loadResult, error) {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: openLoopInFlight,
		MaxConnsPerHost:     openLoopInFlight,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: transport}),
		vegeta.Workers(16),
		vegeta.MaxWorkers(openLoopInFlight),
		vegeta.Timeout(30*time.Second),
		vegeta.Redirects(vegeta.NoFollow),
	)
	pacer := vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}
	return attack(name, atk, tr, pacer, duration, pid)
}

// attack runs atk until the pacer or maxDuration stops it and measures
// the run, with the CPU time pid used meanwhile (pid > 0).
func attack(name string, atk *vegeta.Attacker, tr vegeta.Targeter, pacer vegeta.Pacer, maxDuration time.Duration, pid int) (loadResult, error) {
	var cpuBefore time.Duration
	if pid > 0 {
		var err error
		if cpuBefore, err = cpuTime(pid); err != nil {
			return loadResult{}, err
		}
	}
	var m vegeta.Metrics
	for res := range atk.Attack(tr, pacer, maxDuration, name) {
		m.Add(res)
	}
	m.Close()
	return finishRun(name, &m, pid, cpuBefore)
}

// finishRun turns a run's metrics into a loadResult, with the CPU time pid
// used since cpuBefore (pid > 0).
func finishRun(name string, m *vegeta.Metrics, pid int, cpuBefore time.Duration) (loadResult, error) {
	out := loadResult{
		Requests:    m.Requests,
		Seconds:     m.Duration.Seconds() + m.Wait.Seconds(),
		PerSecond:   m.Throughput,
		P50ms:       ms(m.Latencies.P50),
		P99ms:       ms(m.Latencies.P99),
		Success:     m.Success,
		StatusCodes: m.StatusCodes,
		Errors:      firstN(m.Errors, 5),
	}
	if pid > 0 {
		cpuAfter, err := cpuTime(pid)
		if err != nil {
			return loadResult{}, err
		}
		if m.Requests > 0 {
			out.CPUPerRequestUs = float64((cpuAfter - cpuBefore).Nanoseconds()) / 1e3 / float64(m.Requests)
		}
	}
	if m.Requests == 0 {
		return out, fmt.Errorf("%s: no requests completed", name)
	}
	return out, nil
}

// countPacer sends as fast as the workers allow and stops after max hits.
type countPacer struct{ max uint64 }

func (p countPacer) Pace(_ time.Duration, hits uint64) (time.Duration, bool) {
	return 0, hits >= p.max
}

// Rate is unbounded: a closed loop, paced only by the answers.
func (countPacer) Rate(time.Duration) float64 { return 0 }

// staticTarget repeats one request.
func staticTarget(method, url string, header http.Header, body []byte) vegeta.Targeter {
	return vegeta.NewStaticTargeter(vegeta.Target{Method: method, URL: url, Header: header, Body: body})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// quantiles returns the p50 and p99 of samples in milliseconds.
func quantiles(samples []time.Duration) (p50, p99 float64) {
	if len(samples) == 0 {
		return 0, 0
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	at := func(q float64) time.Duration { return samples[int(q*float64(len(samples)-1))] }
	return ms(at(0.50)), ms(at(0.99))
}
