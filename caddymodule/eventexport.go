package caddymodule

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// Formats of the events listing. json is the admin API's paged object
// ({"events":[...],"next":...}); jsonl and csv are exports, one event a
// line, for log pipelines and spreadsheets.
const (
	eventFormatJSON  = "json"
	eventFormatJSONL = "jsonl"
	eventFormatCSV   = "csv"
)

// checkEventFormat refuses a format the listing cannot write.
func checkEventFormat(format string) error {
	switch format {
	case eventFormatJSON, eventFormatJSONL, eventFormatCSV:
		return nil
	}
	return fmt.Errorf("unknown format %q (expected json, jsonl or csv)", format)
}

// checkEventTypes refuses a type that is not an audit event type, so a
// misspelt filter ("user.create") never silently lists nothing.
func checkEventTypes(types []string) error {
	for _, t := range types {
		if t = strings.TrimSpace(t); t != "" && !storage.IsEventType(t) {
			valid := make([]string, len(storage.EventTypes))
			for i, e := range storage.EventTypes {
				valid[i] = e.Type
			}
			return fmt.Errorf("unknown event type %q; valid types: %s", t, strings.Join(valid, ", "))
		}
	}
	return nil
}

// eventCSVHeader is the first line of a CSV export; the columns are the
// fields of storage.Event.
var eventCSVHeader = []string{"id", "time", "type", "actor", "actorName", "resourceType", "resourceId", "resourceName", "before", "after", "reason"}

// eventCSVRecord is one event as a CSV row, in eventCSVHeader's order.
func eventCSVRecord(e storage.Event) []string {
	row := []string{e.ID, e.Time.UTC().Format(time.RFC3339Nano), e.Type, e.Actor, e.ActorName,
		e.ResourceType, e.ResourceID, e.ResourceName, e.Before, e.After, e.Reason}
	for i, v := range row {
		row[i] = csvCell(v)
	}
	return row
}

// csvCell defuses a value a spreadsheet would run as a formula (CSV
// injection): names and User-Agents come from IdPs and clients, and an
// export is opened by people. A leading ' makes the cell text, as OWASP
// recommends; the value is otherwise kept as is.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// eventWriter writes events in one of the export formats.
type eventWriter struct {
	format string
	w      io.Writer
	csv    *csv.Writer
}

// newEventWriter starts an export; a CSV one begins with its header.
func newEventWriter(w io.Writer, format string) (*eventWriter, error) {
	ew := &eventWriter{format: format, w: w}
	if format == eventFormatCSV {
		ew.csv = csv.NewWriter(w)
		if err := ew.csv.Write(eventCSVHeader); err != nil {
			return nil, err
		}
	}
	return ew, nil
}

func (ew *eventWriter) write(events []storage.Event) error {
	for _, e := range events {
		if ew.csv != nil {
			if err := ew.csv.Write(eventCSVRecord(e)); err != nil {
				return err
			}
			continue
		}
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := ew.w.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	if ew.csv != nil {
		ew.csv.Flush()
		return ew.csv.Error()
	}
	return nil
}

// writeEventExport answers a listing in jsonl or csv: the page of events,
// and, if there is a next page, a Link header (RFC 8288) to it.
func writeEventExport(w http.ResponseWriter, r *http.Request, format string, resp eventsResponse) error {
	if resp.Next != "" {
		q := r.URL.Query()
		q.Set("before", resp.Next)
		next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	contentType := "application/jsonl; charset=utf-8"
	if format == eventFormatCSV {
		contentType = "text/csv; charset=utf-8"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	// The status is sent: a failed write means the client went away, and
	// there is no one left to answer.
	if ew, err := newEventWriter(w, format); err == nil {
		_ = ew.write(resp.Events)
	}
	return nil
}
