package authz

// Decision is what a gate decided about one request, as
// GateConfig.ObserveDecision receives it (for metrics).
type Decision int

const (
	// DecisionAllowed: the request went on to the next handler (on a
	// public route, anonymous requests included).
	DecisionAllowed Decision = iota
	// DecisionUnauthenticated: no live session; redirected to sign in
	// (browsers) or answered 401.
	DecisionUnauthenticated
	// DecisionDenied: signed in but refused with 403: the route's
	// require or allow_groups, a deactivated user, or no mapped group
	// under require_mapped_group.
	DecisionDenied
	// DecisionBadRequest: refused with 400 whoever sent it: a path a
	// backend could read differently, or a tunnel that is not a WebSocket.
	DecisionBadRequest
	// DecisionError: the store failed while checking (500 or 503).
	DecisionError
	// DecisionCount is the number of decisions, for arrays indexed by one.
	DecisionCount
)

var decisionNames = [DecisionCount]string{"allowed", "unauthenticated", "denied", "bad_request", "error"}

// String is the decision's metric label value.
func (d Decision) String() string {
	if d < 0 || d >= DecisionCount {
		return "unknown"
	}
	return decisionNames[d]
}

// decided reports a decision to the route's hook.
func (g *Gate) decided(d Decision) {
	if g.observe != nil {
		g.observe(d)
	}
}

// IdentitiesObserver is told how a tenant's identity cache and live
// requests fare, so that an embedder can count it (the Caddy wiring turns
// it into Prometheus metrics); IdentitiesConfig.Observer nil: nothing is
// reported. The methods are called on request paths and the live-request
// watcher: they must be quick and must not block. The user ids passed are
// for matching a user's deprovisioning within the process; they must never
// become metric labels.
type IdentitiesObserver interface {
	// CacheHit: a request's identity was served from the cache.
	CacheHit()
	// CacheLoad: a request's identity was read from the store (not
	// cached, cached for an older store generation, or its LastSeen due).
	CacheLoad()
	// SessionRefused: a request came with a session the cache knew as
	// userID's, and the gate no longer lets it through: the session is
	// gone (signed out, ended by a deactivation or deletion), the user is
	// inactive, or in no mapped group.
	SessionRefused(userID string)
	// LiveRequestEnded: the live-request watcher ended a request of userID
	// because its session lost access (see liveRequests).
	LiveRequestEnded(userID string)
}
