package caddymodule

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/scimhandler"
)

// The gateway's Prometheus metrics (README "Metrics" lists them). They are
// served with Caddy's own on the admin API's /metrics and on any `metrics`
// handler.
//
// Caddy gives every config it loads a registry of its own and serves the
// running config's, so the collectors are made once per process and
// registered on the registry of each config as it provisions: counters
// keep counting across reloads, and a config never registers a collector
// twice. Labels name tenants, routes, protocols and outcomes only, never
// a person.
type gatewayMetrics struct {
	scimRequests      *prometheus.CounterVec   // tenant, resource, operation, status
	scimTokenFailures *prometheus.CounterVec   // tenant, reason
	scimRateLimited   *prometheus.CounterVec   // tenant
	signIns           *prometheus.CounterVec   // tenant, protocol, result
	gateDecisions     *prometheus.CounterVec   // tenant, route, decision
	cacheHits         *prometheus.CounterVec   // tenant
	cacheLoads        *prometheus.CounterVec   // tenant
	liveRevoked       *prometheus.CounterVec   // tenant
	revocation        *prometheus.HistogramVec // tenant, ended_by
	googleSyncs       *prometheus.CounterVec   // tenant, result
	googleDeactivated *prometheus.CounterVec   // tenant
	googleAPICalls    *prometheus.CounterVec   // tenant

	clock *revocationClock
}

const metricsNamespace = "portcullis"

// revocationBuckets span both ways access ends: the live-request watcher
// (a tenth of a second or so) and a person's next request (any time).
var revocationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600}

var (
	metricsOnce    sync.Once
	processMetrics *gatewayMetrics
)

// theMetrics returns the process's collectors, made on first use.
func theMetrics() *gatewayMetrics {
	metricsOnce.Do(func() { processMetrics = newGatewayMetrics() })
	return processMetrics
}

func newGatewayMetrics() *gatewayMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
	}
	return &gatewayMetrics{
		scimRequests: counter("scim_requests_total",
			"SCIM requests answered, by tenant, resource endpoint, operation and HTTP status.",
			"tenant", "resource", "operation", "status"),
		scimTokenFailures: counter("scim_token_failures_total",
			"SCIM requests whose bearer token was refused, by reason (missing, invalid, disabled).",
			"tenant", "reason"),
		scimRateLimited: counter("scim_rate_limited_total",
			"SCIM requests answered 429 because their client address is over the failed-token limit.",
			"tenant"),
		signIns: counter("signins_total",
			"Sign-in callbacks, by tenant, protocol (oidc, saml) and result.",
			"tenant", "protocol", "result"),
		gateDecisions: counter("gate_decisions_total",
			"Requests through identity routes, by tenant, route and decision (allowed, unauthenticated, denied, bad_request, error).",
			"tenant", "route", "decision"),
		cacheHits: counter("identity_cache_hits_total",
			"Requests whose identity was served from the identity cache.",
			"tenant"),
		cacheLoads: counter("identity_cache_loads_total",
			"Requests whose identity was read from the store (not cached, or cached before a store write).",
			"tenant"),
		liveRevoked: counter("live_requests_revoked_total",
			"Live requests (WebSockets, streams, long polls) ended because their session lost access.",
			"tenant"),
		revocation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "deprovision_to_session_end_seconds",
			Help: "Seconds from the commit of a SCIM write or Google sync that deactivated or deleted a user to the first moment the gateway " +
				"ended that user's access: a live request ended (ended_by=live_request) or a request with the user's session refused (ended_by=next_request).",
			Buckets: revocationBuckets,
		}, []string{"tenant", "ended_by"}),
		googleSyncs: counter("google_syncs_total",
			"Full syncs from Google Workspace finished, by tenant and result (ok, failed).",
			"tenant", "result"),
		googleDeactivated: counter("google_users_deactivated_total",
			"Users deactivated (sessions ended) by the Google Workspace sync: full syncs and activity polls.",
			"tenant"),
		googleAPICalls: counter("google_api_calls_total",
			"Requests full syncs made to Google's Directory and Reports APIs, retries included (token requests and activity polls not counted).",
			"tenant"),
		clock: newRevocationClock(),
	}
}

func (m *gatewayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.scimRequests, m.scimTokenFailures, m.scimRateLimited, m.signIns,
		m.gateDecisions, m.cacheHits, m.cacheLoads, m.liveRevoked, m.revocation,
		m.googleSyncs, m.googleDeactivated, m.googleAPICalls, theChangeFeedCollector}
}

// registerMetrics registers the process's collectors on the registry of
// the config being provisioned. A collector already there (the same config
// provisioned again) is not an error.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil // a context made outside a config load has none
	}
	for _, c := range theMetrics().collectors() {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) && dup.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// scimObserver counts one tenant's SCIM endpoint. Its label values for the
// tenant are bound once; per request only resource, operation and status
// are looked up.
type scimObserver struct {
	tenant      string
	requests    *prometheus.CounterVec // curried with the tenant
	failures    [3]prometheus.Counter  // missing, invalid, disabled
	rateLimited prometheus.Counter
	clock       *revocationClock
}

// rejectionReasons index scimObserver.failures.
var rejectionReasons = [...]string{scimhandler.RejectedMissing, scimhandler.RejectedInvalid, scimhandler.RejectedDisabled}

func newSCIMObserver(tenant string) *scimObserver {
	m := theMetrics()
	o := &scimObserver{
		tenant:      tenant,
		requests:    m.scimRequests.MustCurryWith(prometheus.Labels{"tenant": tenant}),
		rateLimited: m.scimRateLimited.WithLabelValues(tenant),
		clock:       m.clock,
	}
	for i, reason := range rejectionReasons {
		o.failures[i] = m.scimTokenFailures.WithLabelValues(tenant, reason)
	}
	return o
}

func (o *scimObserver) Request(resource, operation string, status int) {
	o.requests.WithLabelValues(resource, operation, strconv.Itoa(status)).Inc()
}

func (o *scimObserver) TokenRejected(reason string, limited bool) {
	for i, r := range rejectionReasons {
		if r == reason {
			o.failures[i].Inc()
		}
	}
	if limited {
		o.rateLimited.Inc()
	}
}

func (o *scimObserver) UserDeprovisioned(userID string, committed time.Time) {
	o.clock.start(o.tenant, userID, committed)
}

// googleSyncObserver counts one tenant's Google Workspace sync and starts
// the deprovisioning clocks of the users it deactivates.
type googleSyncObserver struct {
	tenant      string
	ok, failed  prometheus.Counter
	deactivated prometheus.Counter
	apiCalls    prometheus.Counter
	clock       *revocationClock
}

func newGoogleSyncObserver(tenant string) *googleSyncObserver {
	m := theMetrics()
	return &googleSyncObserver{
		tenant:      tenant,
		ok:          m.googleSyncs.WithLabelValues(tenant, directory.ResultOK),
		failed:      m.googleSyncs.WithLabelValues(tenant, directory.ResultFailed),
		deactivated: m.googleDeactivated.WithLabelValues(tenant),
		apiCalls:    m.googleAPICalls.WithLabelValues(tenant),
		clock:       m.clock,
	}
}

func (o *googleSyncObserver) UserDeprovisioned(userID string, committed time.Time) {
	o.deactivated.Inc()
	o.clock.start(o.tenant, userID, committed)
}

func (o *googleSyncObserver) SyncFinished(st directory.Status) {
	if st.Result == directory.ResultOK {
		o.ok.Inc()
	} else {
		o.failed.Inc()
	}
	o.apiCalls.Add(float64(st.Counts.APICalls))
}

// signInObserver counts one tenant's sign-ins.
func signInObserver(tenant string) func(protocol, result string) {
	signIns := theMetrics().signIns.MustCurryWith(prometheus.Labels{"tenant": tenant})
	return func(protocol, result string) { signIns.WithLabelValues(protocol, result).Inc() }
}

// gateObserver counts one route's decisions: each decision's counter is
// bound when the route is provisioned, so a request costs one atomic add.
func gateObserver(tenant, route string) func(authz.Decision) {
	var counters [authz.DecisionCount]prometheus.Counter
	for d := authz.Decision(0); d < authz.DecisionCount; d++ {
		counters[d] = theMetrics().gateDecisions.WithLabelValues(tenant, route, d.String())
	}
	return func(d authz.Decision) {
		if d >= 0 && d < authz.DecisionCount {
			counters[d].Inc()
		}
	}
}

// identitiesObserver counts one tenant's identity cache and live requests,
// and ends the deprovisioning clocks of its users.
type identitiesObserver struct {
	tenant            string
	hits, loads, live prometheus.Counter
	byNextRequest     prometheus.Observer
	byLiveRequest     prometheus.Observer
	clock             *revocationClock
}

func newIdentitiesObserver(tenant string) *identitiesObserver {
	m := theMetrics()
	return &identitiesObserver{
		tenant:        tenant,
		hits:          m.cacheHits.WithLabelValues(tenant),
		loads:         m.cacheLoads.WithLabelValues(tenant),
		live:          m.liveRevoked.WithLabelValues(tenant),
		byNextRequest: m.revocation.WithLabelValues(tenant, "next_request"),
		byLiveRequest: m.revocation.WithLabelValues(tenant, "live_request"),
		clock:         m.clock,
	}
}

func (o *identitiesObserver) CacheHit()  { o.hits.Inc() }
func (o *identitiesObserver) CacheLoad() { o.loads.Inc() }

func (o *identitiesObserver) SessionRefused(userID string) {
	if d, ok := o.clock.stop(o.tenant, userID, time.Now()); ok {
		o.byNextRequest.Observe(d.Seconds())
	}
}

func (o *identitiesObserver) LiveRequestEnded(userID string) {
	o.live.Inc()
	if d, ok := o.clock.stop(o.tenant, userID, time.Now()); ok {
		o.byLiveRequest.Observe(d.Seconds())
	}
}

// Interface guards
var (
	_ scimhandler.Observer     = (*scimObserver)(nil)
	_ authz.IdentitiesObserver = (*identitiesObserver)(nil)
	_ directory.Observer       = (*googleSyncObserver)(nil)
)

// routeLabel is an identity route's label value: its configured name, or
// its policy (as authz names an unnamed route in audit events).
func routeLabel(name string, p authz.Policy) string {
	if name != "" {
		return name
	}
	return p.String()
}
