package googlefake

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Activity is one admin console event, as the Reports API lists it under
// applicationName=admin (names and parameters as Google's admin activity
// reference gives them, e.g. SUSPEND_USER with USER_EMAIL,
// REMOVE_GROUP_MEMBER with USER_EMAIL and GROUP_EMAIL).
type Activity struct {
	Time   time.Time
	Type   string // USER_SETTINGS, GROUP_SETTINGS
	Name   string
	Params map[string]string
}

// AddActivity records an admin event that happened now.
func (s *Server) AddActivity(typ, name string, params map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.activities = append(s.dir.activities, Activity{Time: time.Now().UTC(), Type: typ, Name: name, Params: params})
}

// SuspendUser suspends the user and records SUSPEND_USER, as the admin
// console does.
func (s *Server) SuspendUser(id string) {
	var email string
	s.UpdateUser(id, func(u *User) { u.Suspended, email = true, u.PrimaryEmail })
	s.AddActivity("USER_SETTINGS", "SUSPEND_USER", map[string]string{"USER_EMAIL": email})
}

// serveReports answers activities.list for the admin application.
func (s *Server) serveReports(w http.ResponseWriter, r *http.Request) {
	s.count("activities")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/admin/reports/v1/"), "/")
	if len(parts) != 5 || parts[0] != "activity" || parts[1] != "users" || parts[3] != "applications" {
		apiError(w, http.StatusNotFound, "notFound", "Not Found", "")
		return
	}
	if !s.authorize(w, r, ScopeAuditReadonly) {
		return
	}
	if parts[4] != "admin" {
		apiError(w, http.StatusBadRequest, "invalid", "the fake serves applicationName=admin only", "")
		return
	}
	q := r.URL.Query()
	var start, end time.Time
	for name, t := range map[string]*time.Time{"startTime": &start, "endTime": &end} {
		if v := q.Get(name); v != "" {
			var err error
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				apiError(w, http.StatusBadRequest, "invalid", "Invalid value for "+name, "")
				return
			}
		}
	}
	s.mu.Lock()
	visibleUntil := time.Now().Add(-s.reportingLag)
	var match []Activity
	// Newest first, as Google lists them.
	for i := len(s.dir.activities) - 1; i >= 0; i-- {
		a := s.dir.activities[i]
		if a.Time.After(visibleUntil) || (!start.IsZero() && a.Time.Before(start)) || (!end.IsZero() && !a.Time.Before(end)) {
			continue
		}
		if n := q.Get("eventName"); n != "" && n != a.Name {
			continue
		}
		match = append(match, a)
	}
	s.mu.Unlock()
	from, to, next, err := page(r, len(match), 1000, 1000)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", err.Error(), "")
		return
	}
	items := make([]map[string]any, 0, to-from)
	for _, a := range match[from:to] {
		var params []map[string]string
		for k, v := range a.Params {
			params = append(params, map[string]string{"name": k, "value": v})
		}
		items = append(items, map[string]any{
			"kind": "admin#reports#activity",
			"id": map[string]string{
				"time":            a.Time.Format(time.RFC3339Nano),
				"uniqueQualifier": strconv.FormatInt(a.Time.UnixNano(), 10),
				"applicationName": "admin", "customerId": "C0fake000",
			},
			"actor":  map[string]string{"callerType": "USER", "email": s.AdminEmail, "profileId": "100000000000000000000"},
			"events": []map[string]any{{"type": a.Type, "name": a.Name, "parameters": params}},
		})
	}
	doc := map[string]any{"kind": "admin#reports#activities", "items": items}
	if next != "" {
		doc["nextPageToken"] = next
	}
	writeJSON(w, doc)
}
