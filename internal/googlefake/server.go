// Package googlefake is a local stand-in for Google Workspace's Admin SDK
// (Directory API users, groups, members; Reports API admin activities) and
// for Google's OAuth token endpoint, for tests of the directory sync.
//
// It serves the JSON shapes Google documents (the field names are those of
// google.golang.org/api/admin/directory/v1 and admin/reports/v1), pages
// with nextPageToken, verifies the service account's RS256-signed JWT grant
// before issuing an access token, checks each call's scope, and can be told
// to fail: 429 or 403 rate limits with or without Retry-After, a 500 in the
// middle of a listing, a failing token endpoint, expired tokens.
//
// It listens on 127.0.0.1 only. It is a test helper: nothing in the
// gateway imports it.
package googlefake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// OAuth scopes the fake checks (Google's names).
const (
	ScopeUserReadonly   = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeGroupReadonly  = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeMemberReadonly = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"
	ScopeAuditReadonly  = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
)

// Server is a running fake. Its directory is changed through its methods
// (AddUser, SetSuspended, AddMember, …), safe for concurrent use with the
// requests it serves.
type Server struct {
	// Account is the service account whose key file (Account.JSON) the
	// sync is configured with; its token_uri is this server's.
	Account *ServiceAccount
	// AdminEmail is the user the service account may act as (the JWT's
	// sub); grants for anyone else are refused like a missing
	// domain-wide delegation.
	AdminEmail string
	// Domain is the primary domain; users.list and groups.list filter by
	// it when asked for a domain.
	Domain string

	srv *httptest.Server

	mu           sync.Mutex
	grants       map[string]*grant
	tokenFailure int // non-zero: the token endpoint answers this status
	faults       []*Fault
	calls        map[string]int
	// ReportingLag hides activities younger than it, as Google's Reports
	// API shows admin events some time after they happened.
	reportingLag time.Duration
	dir          directory
}

// New starts a fake on 127.0.0.1 for domain, with admin as the user the
// service account acts as.
func New(domain, admin string) (*Server, error) {
	s := &Server{AdminEmail: admin, Domain: domain, grants: map[string]*grant{}, calls: map[string]int{}}
	s.dir.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.serveToken)
	mux.HandleFunc("/admin/directory/v1/", s.withFaults(s.serveDirectory))
	mux.HandleFunc("/admin/reports/v1/", s.withFaults(s.serveReports))
	s.srv = httptest.NewServer(mux)
	sa, err := newServiceAccount(s.TokenURL())
	if err != nil {
		s.srv.Close()
		return nil, err
	}
	s.Account = sa
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the API endpoint (what api_endpoint is set to): the root under
// which /admin/directory/v1/ and /admin/reports/v1/ are served.
func (s *Server) URL() string { return s.srv.URL + "/" }

// TokenURL is the token endpoint named by the key file's token_uri.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// SetTokenFailure makes the token endpoint answer status (0: work again).
func (s *Server) SetTokenFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFailure = status
}

// ExpireTokens revokes every access token issued so far: the APIs answer
// them 401 as Google does an expired token.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		g.expires = time.Time{}
	}
}

// SetReportingLag sets how long an activity stays hidden from the Reports
// API after it happened.
func (s *Server) SetReportingLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportingLag = d
}

// Calls says how many requests of a kind were served: "token", "users",
// "user", "groups", "group", "members", "hasMember", "activities"; ""
// counts every API request (not the token endpoint).
func (s *Server) Calls(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

// ResetCalls sets every counter back to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

func (s *Server) count(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[kind]++
	if kind != "token" {
		s.calls[""]++
	}
}

// Fault is an injected failure: requests whose path starts with Path (and,
// with MidListing, that carry a pageToken: not the first page) are
// answered Status with Google's error body naming Reason, and Retry-After
// when RetryAfter is set. Times bounds how many requests it answers (0:
// every one until removed).
type Fault struct {
	Path       string
	MidListing bool
	Status     int
	Reason     string
	RetryAfter string
	Times      int

	served int
}

// AddFault injects f; it applies until it has answered f.Times requests.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FaultsServed says how many requests injected faults answered.
func (s *Server) FaultsServed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.served
	}
	return n
}

func (s *Server) withFaults(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		var hit *Fault
		for _, f := range s.faults {
			if !strings.HasPrefix(r.URL.Path, f.Path) || (f.MidListing && r.URL.Query().Get("pageToken") == "") {
				continue
			}
			if f.Times > 0 && f.served >= f.Times {
				continue
			}
			f.served++
			hit = f
			break
		}
		s.mu.Unlock()
		if hit != nil {
			s.count("fault")
			msg := http.StatusText(hit.Status)
			if hit.Reason == "rateLimitExceeded" || hit.Reason == "userRateLimitExceeded" || hit.Reason == "quotaExceeded" {
				msg = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'"
			}
			apiError(w, hit.Status, hit.Reason, msg, hit.RetryAfter)
			return
		}
		next(w, r)
	}
}
