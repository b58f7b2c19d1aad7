package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// identityCache is the gateway's identity cache counters for the bench
// tenant, read from the admin API's Prometheus text: the share of requests
// served without a store read explains a proxy figure.
type identityCache struct {
	Hits  float64 `json:"hits"`
	Loads float64 `json:"loads"`
}

func readIdentityCache(adminURL string) (identityCache, error) {
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		return identityCache{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return identityCache{}, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	var c identityCache
	want := map[string]*float64{
		`portcullis_identity_cache_hits_total{tenant="` + benchTenant + `"}`:  &c.Hits,
		`portcullis_identity_cache_loads_total{tenant="` + benchTenant + `"}`: &c.Loads,
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			if *dst, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
				return identityCache{}, err
			}
		}
	}
	return c, sc.Err()
}

// since is the counters' growth from before.
func (c identityCache) since(before identityCache) identityCache {
	return identityCache{Hits: c.Hits - before.Hits, Loads: c.Loads - before.Loads}
}
