package sso

import "github.com/portcullis/portcullis/storage"

// namedSignInEvent fills the names of an event written by u's sign-in, so
// the audit log reads "alice@example.com signed in" and "… joined
// Engineering" without a lookup: the user's userName for the actor and a
// user resource, the group's displayName (as of this transaction) for a
// group resource.
func namedSignInEvent(tx storage.ReadTx, e storage.Event, u *storage.User) storage.Event {
	if e.Actor == u.ID && e.ActorName == "" {
		e.ActorName = u.UserName
	}
	if e.ResourceName != "" {
		return e
	}
	switch e.ResourceType {
	case "User":
		if e.ResourceID == u.ID {
			e.ResourceName = u.UserName
		}
	case "Group":
		if g, err := tx.GetGroup(e.ResourceID); err == nil {
			e.ResourceName = g.DisplayName
		}
	}
	return e
}
