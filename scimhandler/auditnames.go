package scimhandler

import (
	"context"
	"net/http"
	"strings"
	"unicode"

	"github.com/portcullis/portcullis/storage"
)

// Audit events of SCIM writes carry names next to ids, so the log reads
// "Okta SCIM Client created alice@example.com" without a lookup: the
// client's User-Agent (which names the IdP calling) as ActorName, the
// userName or displayName as ResourceName. Rather than thread names
// through every write, the request's context carries the actor's name and
// update wraps the transaction in a namingTx that fills both fields of
// each event appended.

// maxActorName bounds the User-Agent kept in an event.
const maxActorName = 100

type actorNameKey struct{}

// withActor returns ctx carrying the audit actor (the token id) and the
// name of the client using it.
func withActor(ctx context.Context, actor string, r *http.Request) context.Context {
	return context.WithValue(ctx, actorNameKey{}, [2]string{actor, clientName(r)})
}

// clientName is the request's User-Agent made safe for a log line: control
// characters dropped, spaces collapsed, bounded.
func clientName(r *http.Request) string {
	ua := strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return ' '
		}
		return c
	}, r.UserAgent())
	ua = strings.Join(strings.Fields(ua), " ")
	if ua == "" {
		return "SCIM client without User-Agent"
	}
	if len(ua) > maxActorName {
		// Cut on a rune boundary: a half rune would be stored as U+FFFD.
		ua = strings.ToValidUTF8(ua[:maxActorName], "") + "…"
	}
	return ua
}

// namingTx fills ActorName and ResourceName of the events appended through
// it, where the writer left them empty. Names come from the transaction's
// own view, so they are the names as of this change.
type namingTx struct {
	storage.Tx
	actor, actorName string
	names            map[string]string // resource type + id -> name
}

func namingTxFor(ctx context.Context, tx storage.Tx) storage.Tx {
	a, ok := ctx.Value(actorNameKey{}).([2]string)
	if !ok {
		return tx
	}
	return &namingTx{Tx: tx, actor: a[0], actorName: a[1]}
}

func (t *namingTx) AppendEvent(e storage.Event) error {
	if e.ActorName == "" && e.Actor == t.actor {
		e.ActorName = t.actorName
	}
	if e.ResourceName == "" && e.ResourceID != "" {
		e.ResourceName = t.resourceName(e.ResourceType, e.ResourceID)
	}
	return t.Tx.AppendEvent(e)
}

// PutUser and PutGroup note the name they wrote, so the event that follows
// a write (every write appends one) names the resource without reading it
// back: one read less per SCIM create or update.
func (t *namingTx) PutUser(u *storage.User) error {
	if err := t.Tx.PutUser(u); err != nil {
		return err
	}
	t.noteName("User", u.ID, u.UserName)
	return nil
}

func (t *namingTx) PutGroup(g *storage.Group) error {
	if err := t.Tx.PutGroup(g); err != nil {
		return err
	}
	t.noteName("Group", g.ID, g.DisplayName)
	return nil
}

func (t *namingTx) noteName(typ, id, name string) {
	if t.names == nil {
		t.names = make(map[string]string)
	}
	t.names[typ+"\x00"+id] = name
}

// resourceName looks a user's or group's name up once per transaction (a
// PATCH of many members appends many events about one group).
func (t *namingTx) resourceName(typ, id string) string {
	key := typ + "\x00" + id
	if name, ok := t.names[key]; ok {
		return name
	}
	var name string
	switch typ {
	case "User":
		if u, err := t.GetUser(id); err == nil {
			name = u.UserName
		}
	case "Group":
		if g, err := t.GetGroup(id); err == nil {
			name = g.DisplayName
		}
	}
	t.noteName(typ, id, name)
	return name
}
