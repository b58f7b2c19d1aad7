package sso

import (
	"errors"
	"fmt"
	"github.com/portcullis/portcullis/pages"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// identity is what a verified IdP answer says about the person.
type identity struct {
	protocol string
	// issuer and subject are what the IdP guarantees to identify the
	// person: OIDC iss and sub, SAML Issuer and (non-transient) NameID.
	// subject is "" when there is nothing stable to link.
	issuer  string
	subject string
	// userNames are candidates for the provisioned userName, best first.
	userNames []string
	email     string
	name      string
	// groups from the groups claim or attribute (absent = none).
	groups []string

	// For IdP logout and session bounds.
	idTokenHint  string
	nameID       string
	nameIDFormat string
	sessionIndex string
	notOnOrAfter time.Time // IdP's own session end (SAML SessionNotOnOrAfter)
}

// Limits on what a JIT sign-in takes from claims.
const (
	maxGroupsPerSignIn = 500
	maxClaimLen        = 256
)

// refusal is a sign-in that the checks turned down. reason goes to the
// audit log; page is what the person sees.
type refusal struct {
	status int
	reason string
	page   pages.Kind
	userID string
	// title and message, when set, replace the page's words.
	title, message string
}

// lastSignInKept is how long a user's last sign-in record is kept (as long
// as audit events are by default).
const lastSignInKept = storage.DefaultEventMaxAge

func (e *refusal) Error() string { return "sign-in refused: " + e.reason }

// completeSignIn matches id to a user (or creates one just in time), checks
// that they may sign in, and stores a fresh session in one transaction with
// its audit events. It returns the new session id.
func (s *Service) completeSignIn(r *http.Request, id *identity) (string, *storage.User, error) {
	now := s.now()
	email := strings.ToLower(strings.TrimSpace(id.email))
	if email != "" && !plausibleEmail(email) {
		email = ""
	}
	plaintext, hash := storage.NewSecret()
	oldHash, hadOld := s.currentSessionHash(r)
	clientAddr, userAgent := s.signInClient(r)

	var user *storage.User
	ctx, cancel := auditContext(r)
	defer cancel()
	err := s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		user = nil
		u, viaLink, err := s.findUser(tx, id, email)
		if err != nil {
			return err
		}
		if u != nil && !viaLink {
			// Matched by a claim the IdP does not guarantee to be unique or
			// stable (preferred_username, a NameID, an email): a user who
			// already signs in with another account at this IdP must not
			// be reachable from a second one that claims the same name.
			other, err := linkedToAnother(tx, id, u.ID)
			if err != nil {
				return err
			}
			if other {
				return &refusal{status: http.StatusForbidden, page: pages.NotProvisioned, userID: u.ID,
					reason: fmt.Sprintf("%q matches a user who signs in with another account at this IdP", u.UserName)}
			}
		}
		var events []storage.Event
		if u == nil {
			if !s.cfg.JIT {
				return &refusal{status: http.StatusForbidden, page: pages.NotProvisioned,
					reason: fmt.Sprintf("no provisioned user matches %q and just-in-time creation is off", firstNonEmpty(id.userNames...))}
			}
			if err := s.checkDomain(email, ""); err != nil {
				return err
			}
			u, events, err = s.createJITUser(tx, id, email, now)
			if err != nil {
				return err
			}
		} else {
			if err := s.checkDomain(email, u.PrimaryEmail()); err != nil {
				err.(*refusal).userID = u.ID
				return err
			}
			if !u.Active {
				return &refusal{status: http.StatusForbidden, page: pages.AccountInactive, userID: u.ID,
					reason: "user is deactivated"}
			}
			if s.cfg.JIT && u.Source == storage.SourceJIT {
				ev, err := s.refreshJITUser(tx, u, id, email, now)
				if err != nil {
					return err
				}
				events = append(events, ev...)
			}
		}
		if u.Source == storage.SourceJIT && s.cfg.JIT {
			ev, err := s.syncJITGroups(tx, u, id.groups, now)
			if err != nil {
				return err
			}
			events = append(events, ev...)
		}
		if hadOld {
			// Session fixation: whatever session this browser had is over.
			if err := tx.DeleteSession(oldHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
		expires := now.Add(s.cfg.Session.AbsoluteTimeout)
		if !id.notOnOrAfter.IsZero() && id.notOnOrAfter.Before(expires) {
			expires = id.notOnOrAfter
		}
		sess := &storage.Session{
			IDHash:       hash,
			UserID:       u.ID,
			Created:      now,
			LastSeen:     now,
			ExpiresAt:    expires,
			Protocol:     id.protocol,
			IDTokenHint:  id.idTokenHint,
			NameID:       id.nameID,
			NameIDFormat: id.nameIDFormat,
			SessionIndex: id.sessionIndex,
			ClientAddr:   clientAddr,
			UserAgent:    userAgent,
		}
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		// The last sign-in, for the operator's user list: a record, so it
		// moves no Generation (caches of other sessions stay warm).
		if err := tx.PutRecord(storage.RecordLastSignIn, u.ID, []byte(now.UTC().Format(time.RFC3339Nano)), lastSignInKept); err != nil {
			return err
		}
		if err := linkSubject(tx, id, u.ID); err != nil {
			return err
		}
		events = append(events, storage.Event{
			Time: now, Type: storage.EventSignIn, Actor: u.ID,
			ResourceType: "User", ResourceID: u.ID, After: id.protocol + " " + u.UserName,
		})
		for _, e := range events {
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		user = u
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return plaintext, user, nil
}

// findUser matches by what the IdP guarantees first: the subject linked
// at an earlier sign-in (subjectlink.go), then the userName the IdP names
// (preferred_username, NameID; case-insensitive), and only then by a
// verified email (completeSignIn is given "" for an unverified one), as
// userName and then as an email of the user; viaLink says the match was
// the subject link (every other match is checked against the links of
// other subjects by the caller). Several users with the same email and no userName match
// is ambiguous: refused.
func (s *Service) findUser(tx storage.ReadTx, id *identity, email string) (u *storage.User, viaLink bool, err error) {
	if u, err := linkedUser(tx, id); u != nil || err != nil {
		return u, u != nil, err
	}
	seen := map[string]bool{}
	for _, name := range append(append([]string{}, id.userNames...), email) {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > maxClaimLen || seen[strings.ToLower(name)] {
			continue
		}
		seen[strings.ToLower(name)] = true
		u, err := tx.UserByUserName(name)
		if err == nil {
			return u, false, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, false, err
		}
	}
	if email == "" {
		return nil, false, nil
	}
	users, err := tx.UsersByEmail(email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, false, err
	}
	switch len(users) {
	case 0:
		return nil, false, nil
	case 1:
		return users[0], false, nil
	default:
		return nil, false, &refusal{status: http.StatusForbidden, page: pages.NotProvisioned,
			reason: fmt.Sprintf("%d users share the email %q and none has it as userName", len(users), email)}
	}
}

// checkDomain applies AllowedDomains to the IdP's email, or else to the
// provisioned user's.
func (s *Service) checkDomain(claimed, stored string) error {
	if len(s.cfg.AllowedDomains) == 0 {
		return nil
	}
	email := claimed
	if email == "" {
		email = strings.ToLower(stored)
	}
	if email == "" {
		return &refusal{status: http.StatusForbidden, page: pages.DomainNotAllowed,
			reason: "no email to check against allowed_domains"}
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	for _, d := range s.cfg.AllowedDomains {
		if domain == d {
			return nil
		}
	}
	return &refusal{status: http.StatusForbidden, page: pages.DomainNotAllowed,
		reason: fmt.Sprintf("email domain %q is not in allowed_domains", domain)}
}

func (s *Service) createJITUser(tx storage.Tx, id *identity, email string, now time.Time) (*storage.User, []storage.Event, error) {
	userName := ""
	for _, n := range append(append([]string{}, id.userNames...), email) {
		if n = strings.TrimSpace(n); n != "" && len(n) <= maxClaimLen {
			userName = n
			break
		}
	}
	if userName == "" {
		return nil, nil, &refusal{status: http.StatusForbidden, page: pages.NotProvisioned,
			reason: "the IdP sent no usable user name or email to create a user from"}
	}
	u := &storage.User{
		ID:          storage.NewID(),
		UserName:    userName,
		DisplayName: truncate(id.name, maxClaimLen),
		Active:      true,
		Source:      storage.SourceJIT,
		Created:     now,
		Modified:    now,
	}
	if email != "" {
		u.Emails = []string{email}
	}
	if err := tx.PutUser(u); err != nil {
		return nil, nil, err
	}
	return u, []storage.Event{{
		Time: now, Type: storage.EventJITUserCreated, Actor: u.ID,
		ResourceType: "User", ResourceID: u.ID, After: u.UserName,
	}}, nil
}

// refreshJITUser keeps a JIT user's name and email in step with the IdP.
func (s *Service) refreshJITUser(tx storage.Tx, u *storage.User, id *identity, email string, now time.Time) ([]storage.Event, error) {
	name := truncate(id.name, maxClaimLen)
	changed := false
	if name != "" && name != u.DisplayName {
		u.DisplayName = name
		changed = true
	}
	if email != "" && u.PrimaryEmail() != email {
		u.Emails = []string{email}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	u.Modified = now
	if err := tx.PutUser(u); err != nil {
		return nil, err
	}
	return []storage.Event{{
		Time: now, Type: storage.EventUserUpdated, Actor: u.ID,
		ResourceType: "User", ResourceID: u.ID, After: "updated from " + id.protocol + " claims",
	}}, nil
}

// syncJITGroups makes a JIT user's direct memberships exactly the groups
// the IdP named, creating missing groups by displayName (source jit).
func (s *Service) syncJITGroups(tx storage.Tx, u *storage.User, names []string, now time.Time) ([]storage.Event, error) {
	var events []storage.Event
	want := map[string]bool{}
	seen := map[string]bool{}
	for _, name := range names {
		name = strings.TrimSpace(name)
		key := strings.ToLower(name)
		if name == "" || len(name) > maxClaimLen || seen[key] {
			continue
		}
		if len(seen) >= maxGroupsPerSignIn {
			s.log.Warn("groups claim truncated", zap.Int("limit", maxGroupsPerSignIn), zap.String("user", u.ID))
			break
		}
		seen[key] = true
		groups, err := tx.GroupsByDisplayName(name)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		var g *storage.Group
		if len(groups) > 0 {
			sort.Slice(groups, func(i, j int) bool { return groups[i].ID < groups[j].ID })
			g = groups[0]
		} else {
			g = &storage.Group{ID: storage.NewID(), DisplayName: name, Source: storage.SourceJIT, Created: now, Modified: now}
			if err := tx.PutGroup(g); err != nil {
				return nil, err
			}
			events = append(events, storage.Event{Time: now, Type: storage.EventGroupCreated, Actor: u.ID,
				ResourceType: "Group", ResourceID: g.ID, After: g.DisplayName})
		}
		want[g.ID] = true
		added, err := tx.AddMember(g.ID, storage.Member{ID: u.ID, Type: storage.MemberUser})
		if err != nil {
			return nil, err
		}
		if added {
			events = append(events, storage.Event{Time: now, Type: storage.EventMemberAdded, Actor: u.ID,
				ResourceType: "Group", ResourceID: g.ID, After: u.ID})
		}
	}
	have, err := tx.GroupsOf(u.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	for _, gid := range have {
		if want[gid] {
			continue
		}
		removed, err := tx.RemoveMember(gid, u.ID)
		if err != nil {
			return nil, err
		}
		if removed {
			events = append(events, storage.Event{Time: now, Type: storage.EventMemberRemoved, Actor: u.ID,
				ResourceType: "Group", ResourceID: gid, Before: u.ID})
		}
	}
	return events, nil
}

func plausibleEmail(e string) bool {
	at := strings.LastIndexByte(e, '@')
	return at > 0 && at < len(e)-1 && len(e) <= maxClaimLen && !strings.ContainsAny(e, " \t\r\n<>,;")
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
