package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"syscall"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// anonymousResult is what anonymous sign-in traffic (anyone can send it)
// cost: it must do no durable store work, so the store must not grow.
type anonymousResult struct {
	Starts          loadResult `json:"starts"`
	Callbacks       loadResult `json:"garbage_callbacks"`
	StoreGrowthKiB  float64    `json:"store_growth_kib"`
	StoreBeforeMiB  float64    `json:"store_before_mib"`
	RequestsPerKind int        `json:"requests_per_kind"`
	// A signed-in user's requests alone, then while the anonymous
	// traffic runs: the anonymous load must not empty the identity cache.
	SignedInAlone  loadResult `json:"signed_in_alone"`
	SignedInDuring loadResult `json:"signed_in_during"`
	// The control: the same user during as many requests to the plain
	// reverse_proxy site, which loads the machine the same way but cannot
	// touch the identity cache. "During" is judged against this, not
	// against "alone": on a shared 2-core machine any flood costs latency.
	SignedInDuringPlain loadResult `json:"signed_in_during_plain_flood"`
}

// bystanderName is the signed-in user whose latency the anonymous load
// must not disturb.
const bystanderName = "bystander@bench.example"

// signedInRequests is how many requests the bystander sends per run.
const signedInRequests = 3000

// measureAnonymous sends n sign-in starts and n garbage OIDC callbacks
// (random state, garbage code, no flow cookie) and measures how much the
// store directory grew on disk (allocated blocks).
func (e *benchEnv) measureAnonymous(pid, n, concurrency int, o options) (*anonymousResult, error) {
	data := filepath.Join(e.dir, "data")
	before, err := diskUsage(data)
	if err != nil {
		return nil, err
	}
	res := &anonymousResult{RequestsPerKind: n, StoreBeforeMiB: float64(before) / (1 << 20)}
	signedIn := staticTarget(http.MethodGet, e.gatewayURL+"/", http.Header{"Cookie": {e.bystanderCookie}, "Accept": {"text/html"}}, nil)
	if res.SignedInAlone, err = runLoad("signed-in-alone", signedIn, 2, signedInRequests, o.maxRun, 0); err != nil {
		return nil, err
	}
	// The control flood first: 2n requests to the plain site at the same
	// concurrency, with the user measured alongside.
	control := make(chan error, 1)
	go func() {
		var err error
		res.SignedInDuringPlain, err = runLoad("signed-in-during-plain", signedIn, 2, signedInRequests, o.maxRun, 0)
		control <- err
	}()
	if _, err := runLoad("plain-flood", staticTarget(http.MethodGet, e.plainURL+"/", nil, nil), concurrency, uint64(2*n), o.maxRun, 0); err != nil {
		return nil, err
	}
	if err := <-control; err != nil {
		return nil, err
	}
	during := make(chan error, 1)
	go func() {
		var err error
		res.SignedInDuring, err = runLoad("signed-in-during", signedIn, 2, signedInRequests, o.maxRun, 0)
		during <- err
	}()
	if res.Starts, err = runLoad("sso-login", staticTarget(http.MethodGet, e.gatewayURL+"/sso/login?rd=/page", nil, nil), concurrency, uint64(n), o.maxRun, pid); err != nil {
		return nil, err
	}
	garbage := func(t *vegeta.Target) error {
		t.Method = http.MethodGet
		t.URL = e.gatewayURL + "/sso/oidc/callback?code=garbage&state=" + randomHex(32)
		return nil
	}
	if res.Callbacks, err = runLoad("sso-garbage", garbage, concurrency, uint64(n), o.maxRun, pid); err != nil {
		return nil, err
	}
	if err := <-during; err != nil {
		return nil, err
	}
	for _, r := range []loadResult{res.SignedInAlone, res.SignedInDuring, res.SignedInDuringPlain} {
		if r.StatusCodes["200"] != int(r.Requests) {
			return nil, fmt.Errorf("the signed-in bystander got %v", r.StatusCodes)
		}
	}
	after, err := diskUsage(data)
	if err != nil {
		return nil, err
	}
	res.StoreGrowthKiB = float64(after-before) / 1024
	return res, nil
}

// diskUsage is the space the files under dir take on disk.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	return total, nil
}
