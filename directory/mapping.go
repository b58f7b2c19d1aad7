package directory

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/portcullis/portcullis/storage"
)

// Bounds the store's indexes put on values (as the SCIM layer enforces).
const (
	maxIndexedLength = 1024
	maxEmails        = 100
)

// userAttributes is what a Google user keeps beyond the typed fields, in
// the SCIM shape the rest of the gateway reads (name parts).
type userAttributes struct {
	Name struct {
		GivenName  string `json:"givenName,omitempty"`
		FamilyName string `json:"familyName,omitempty"`
		Formatted  string `json:"formatted,omitempty"`
	} `json:"name"`
}

// groupAttributes keeps the group's address (activity events name groups
// by it) and description.
type groupAttributes struct {
	Email       string `json:"email,omitempty"`
	Description string `json:"description,omitempty"`
}

// googleUser is the storage form of a Google user: userName is the primary
// email, externalId Google's immutable id, emails the primary address then
// the aliases. active is decided by the caller (suspension, archiving,
// mapped groups).
func googleUser(gu *admin.User, active bool) (*storage.User, bool) {
	if gu.Id == "" || gu.PrimaryEmail == "" || len(gu.PrimaryEmail) > maxIndexedLength || len(gu.Id) > maxIndexedLength {
		return nil, false
	}
	u := &storage.User{
		UserName:   gu.PrimaryEmail,
		ExternalID: gu.Id,
		Active:     active,
		Source:     storage.SourceGoogle,
		Emails:     []string{gu.PrimaryEmail},
	}
	for _, a := range gu.Aliases {
		if a != "" && len(a) <= maxIndexedLength && len(u.Emails) < maxEmails &&
			!slices.ContainsFunc(u.Emails, func(e string) bool { return strings.EqualFold(e, a) }) {
			u.Emails = append(u.Emails, a)
		}
	}
	var attrs userAttributes
	if gu.Name != nil {
		attrs.Name.GivenName, attrs.Name.FamilyName = gu.Name.GivenName, gu.Name.FamilyName
		attrs.Name.Formatted = gu.Name.FullName
		u.DisplayName = gu.Name.FullName
		if u.DisplayName == "" {
			u.DisplayName = strings.TrimSpace(gu.Name.GivenName + " " + gu.Name.FamilyName)
		}
	}
	u.Attributes, _ = json.Marshal(attrs)
	return u, true
}

// activeInGoogle: suspended and archived users have no access.
func activeInGoogle(gu *admin.User) bool { return !gu.Suspended && !gu.Archived }

// googleGroup is the storage form of a Google group: displayName is its
// name (its address when unnamed), externalId Google's id.
func googleGroup(gg *admin.Group) (*storage.Group, bool) {
	if gg.Id == "" || len(gg.Id) > maxIndexedLength {
		return nil, false
	}
	g := &storage.Group{DisplayName: gg.Name, ExternalID: gg.Id, Source: storage.SourceGoogle}
	if strings.TrimSpace(g.DisplayName) == "" {
		g.DisplayName = gg.Email
	}
	if g.DisplayName == "" || len(g.DisplayName) > maxIndexedLength {
		return nil, false
	}
	g.Attributes, _ = json.Marshal(groupAttributes{Email: gg.Email, Description: gg.Description})
	return g, true
}

func groupEmail(g *storage.Group) string {
	var a groupAttributes
	_ = json.Unmarshal(g.Attributes, &a)
	return a.Email
}

// sameUser says whether writing next over before would change nothing.
func sameUser(before, next *storage.User) bool {
	return before.UserName == next.UserName && before.ExternalID == next.ExternalID &&
		before.DisplayName == next.DisplayName && before.Active == next.Active && before.Source == next.Source &&
		slices.Equal(before.Emails, next.Emails) && bytes.Equal(before.Attributes, next.Attributes)
}

func sameGroup(before, next *storage.Group) bool {
	return before.DisplayName == next.DisplayName && before.ExternalID == next.ExternalID &&
		before.Source == next.Source && bytes.Equal(before.Attributes, next.Attributes)
}

// refMatcher decides which Google groups are mapped.
type refMatcher struct {
	ids   map[string]bool
	names map[string]bool
}

func newRefMatcher(refs []string) refMatcher {
	m := refMatcher{ids: map[string]bool{}, names: map[string]bool{}}
	for _, r := range refs {
		m.ids[r] = true
		m.names[strings.ToLower(r)] = true
	}
	return m
}

func (m refMatcher) match(gg *admin.Group) bool {
	return m.ids[gg.Id] || m.names[strings.ToLower(gg.Name)] || (strings.TrimSpace(gg.Name) == "" && m.names[strings.ToLower(gg.Email)])
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
