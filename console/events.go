package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Bounds of the events pages.
const (
	eventsPage = 50
	// eventsScan bounds how many events one page reads when filtering by
	// resource (the store filters by type and time, not by resource): a
	// page then shows what matched in that stretch and links on.
	eventsScan  = 5000
	exportBatch = 500
)

// eventTypes are offered in the type filter; any other type may be typed.
var eventTypes = []string{
	storage.EventUserCreated, storage.EventUserUpdated, storage.EventUserDeactivated, storage.EventUserReactivated,
	storage.EventUserDeleted, storage.EventGroupCreated, storage.EventGroupUpdated, storage.EventGroupDeleted,
	storage.EventMemberAdded, storage.EventMemberRemoved, storage.EventTokenCreated, storage.EventTokenRotated,
	storage.EventTokenDisabled, storage.EventTokenRejected, storage.EventSignIn, storage.EventSignInRefused,
	storage.EventSignOut, "mapping.changed", "idp.disconnected", "user.converted", "session.ended",
}

// eventFilter is the events page's filters, as typed.
type eventFilter struct {
	Type, Since, Until, Resource string
	q                            storage.EventQuery
}

// datetime-local inputs send minutes, or seconds when given.
var localLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

func parseEventFilter(v url.Values) (eventFilter, error) {
	f := eventFilter{Type: strings.TrimSpace(v.Get("type")), Since: v.Get("since"), Until: v.Get("until"), Resource: strings.TrimSpace(v.Get("resource"))}
	for _, s := range []string{f.Type, f.Since, f.Until, f.Resource, v.Get("before")} {
		if len(s) > maxSearchLen {
			return f, errors.New("a filter is too long")
		}
	}
	if f.Type != "" {
		f.q.Types = []string{f.Type}
	}
	var err error
	if f.q.Since, err = parseLocal(f.Since); err != nil {
		return f, errors.New("the From time is not a date and time")
	}
	if f.q.Until, err = parseLocal(f.Until); err != nil {
		return f, errors.New("the Until time is not a date and time")
	}
	f.q.Before = v.Get("before")
	return f, nil
}

// parseLocal reads a datetime-local value as UTC ("" is no bound).
func parseLocal(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range localLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			// The store orders events by nanoseconds since 1970 in an
			// int64, which ends in 2262.
			if t.Year() < 1970 || t.Year() > 2200 {
				return time.Time{}, errors.New("out of range")
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

// values are the filters as query parameters (without the cursor).
func (f eventFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"type": f.Type, "since": f.Since, "until": f.Until, "resource": f.Resource} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

type eventsView struct {
	eventFilter
	Types                  []string
	Events                 []eventRow
	First, Next            string
	ExportCSV, ExportJSONL string
}

// serveEvents lists audit events, newest first, a page at a time.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request, c *call) {
	f, err := parseEventFilter(r.URL.Query())
	if err != nil {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Filters: "+err.Error()+".")
		return
	}
	v := eventsView{eventFilter: f, Types: eventTypes}
	var events []storage.Event
	next, err := h.eventPage(r.Context(), c, f, func(e storage.Event) bool {
		events = append(events, e)
		return len(events) < eventsPage
	})
	if err == nil {
		v.Events, err = h.nameEvents(r.Context(), c, events)
	}
	if err != nil {
		h.opFail(w, r, c, "reading the audit events", err)
		return
	}
	link := func(path string, extra url.Values) string {
		p := f.values()
		for k, vs := range extra {
			p[k] = vs
		}
		u := h.tenantURL(c.tenant, path)
		if len(p) > 0 {
			u += "?" + p.Encode()
		}
		return u
	}
	if f.q.Before != "" {
		v.First = link("/events", nil)
	}
	if next != "" {
		v.Next = link("/events", url.Values{"before": {next}})
	}
	v.ExportCSV = link("/events/export", url.Values{"format": {"csv"}})
	v.ExportJSONL = link("/events/export", url.Values{"format": {"jsonl"}})
	h.render(w, r, http.StatusOK, "events", view{Title: "Audit events", Section: "events", Tenant: c.tenant, Data: v})
}

// eventPage reads events matching f from its cursor on, giving each to
// take until take says stop or the log ends. It returns the cursor of
// what follows ("" at the end). A resource filter reads at most
// eventsScan events.
func (h *Handler) eventPage(ctx context.Context, c *call, f eventFilter, take func(storage.Event) bool) (string, error) {
	q := f.q
	scanned := 0
	for {
		q.Limit = exportBatch
		var batch []storage.Event
		err := c.tenant.Store.View(ctx, c.tenant.Name, func(tx storage.ReadTx) error {
			var err error
			batch, err = tx.Events(q)
			return err
		})
		if err != nil {
			return "", err
		}
		for i, e := range batch {
			scanned++
			if f.Resource != "" && e.ResourceID != f.Resource {
				if scanned >= eventsScan {
					return e.ID, nil
				}
				continue
			}
			if !take(e) {
				if i == len(batch)-1 && len(batch) < q.Limit {
					return "", nil
				}
				return e.ID, nil
			}
		}
		if len(batch) < q.Limit {
			return "", nil
		}
		q.Before = batch[len(batch)-1].ID
	}
}

// exportEvents streams every event matching the filters as CSV or JSON
// Lines, newest first, reading the log a batch at a time.
func (h *Handler) exportEvents(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "csv" && format != "jsonl" {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Export as format=csv or format=jsonl.")
		return
	}
	q.Del("format")
	f, err := parseEventFilter(q)
	if err != nil {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Filters: "+err.Error()+".")
		return
	}
	name := "portcullis-" + c.tenant.Name + "-events-" + time.Now().UTC().Format("20060102T150405Z") + "." + format
	hdr := w.Header()
	if format == "csv" {
		hdr.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		hdr.Set("Content-Type", "application/jsonl; charset=utf-8")
	}
	hdr.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	if format == "csv" {
		cw = csv.NewWriter(w)
		_ = cw.Write([]string{"id", "time", "type", "actor", "resourceType", "resourceId", "before", "after", "reason"})
	}
	var writeErr error
	f.Resource = strings.TrimSpace(f.Resource)
	for {
		next, err := h.eventPage(r.Context(), c, f, func(e storage.Event) bool {
			if cw != nil {
				writeErr = cw.Write([]string{e.ID, e.Time.UTC().Format(time.RFC3339Nano), cell(e.Type), cell(e.Actor),
					cell(e.ResourceType), cell(e.ResourceID), cell(e.Before), cell(e.After), cell(e.Reason)})
			} else {
				writeErr = enc.Encode(e)
			}
			return writeErr == nil
		})
		if cw != nil {
			cw.Flush()
		}
		if err != nil || writeErr != nil {
			// The status is sent: the download ends short, and the log says why.
			h.logger.Warn("console: events export ended early", zap.String("tenant", c.tenant.Name), zap.Error(errors.Join(err, writeErr)))
			return
		}
		if next == "" {
			return
		}
		f.q.Before = next
	}
}

// cell keeps a spreadsheet from reading an IdP-supplied value as a
// formula (CSV injection): such a value gets a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// eventRow is an event with the names of the users and groups it
// mentions by id, where they still exist.
type eventRow struct {
	storage.Event
	ActorName    string
	ResourceName string
	ResourceURL  string // the user's console page
}

// nameEvents looks up, in one snapshot, the users and groups a page of
// events names by id, so a person reads "bob", not a UUID.
func (h *Handler) nameEvents(ctx context.Context, c *call, events []storage.Event) ([]eventRow, error) {
	rows := make([]eventRow, len(events))
	users := map[string]string{}
	groups := map[string]string{}
	err := c.tenant.Store.View(ctx, c.tenant.Name, func(tx storage.ReadTx) error {
		user := func(id string) string {
			if id == "" {
				return ""
			}
			name, ok := users[id]
			if !ok {
				if u, err := tx.GetUser(id); err == nil {
					name = u.UserName
				}
				users[id] = name
			}
			return name
		}
		for i, e := range events {
			rows[i] = eventRow{Event: e, ActorName: user(e.Actor)}
			switch strings.ToLower(e.ResourceType) {
			case "user":
				rows[i].ResourceName = user(e.ResourceID)
				if rows[i].ResourceName != "" {
					rows[i].ResourceURL = h.tenantURL(c.tenant, "/users/"+url.PathEscape(e.ResourceID))
				}
			case "group":
				name, ok := groups[e.ResourceID]
				if !ok {
					if g, err := tx.GetGroup(e.ResourceID); err == nil {
						name = g.DisplayName
					}
					groups[e.ResourceID] = name
				}
				rows[i].ResourceName = name
			}
		}
		return nil
	})
	return rows, err
}
