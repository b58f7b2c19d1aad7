package scimhandler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/storage"
)

// Audit summaries are short "key=value" lists of what a change touched.
// They never hold passwords; none is kept, and erasing a hash an earlier
// version kept shows as "password=erased".

const maxSummaryLength = 512

func summary(parts []string) string {
	s := strings.Join(parts, " ")
	if len(s) > maxSummaryLength {
		s = s[:maxSummaryLength-1] + "…"
	}
	return s
}

func kv(k string, v any) string {
	switch t := v.(type) {
	case string:
		return k + "=" + strconv.Quote(truncate(t, 128))
	case []string:
		q := make([]string, len(t))
		for i, s := range t {
			q[i] = strconv.Quote(truncate(s, 128))
		}
		return k + "=[" + strings.Join(q, ",") + "]"
	default:
		return fmt.Sprintf("%s=%v", k, v)
	}
}

// userSummary describes a user for created/deleted events.
func userSummary(u *storage.User) string {
	parts := []string{kv("userName", u.UserName), kv("active", u.Active)}
	if u.ExternalID != "" {
		parts = append(parts, kv("externalId", u.ExternalID))
	}
	return summary(parts)
}

// userDiff describes what changed between two versions of a user.
func userDiff(before, after *storage.User) (string, string) {
	var b, a []string
	add := func(k string, bv, av any) {
		b, a = append(b, kv(k, bv)), append(a, kv(k, av))
	}
	if before.UserName != after.UserName {
		add("userName", before.UserName, after.UserName)
	}
	if before.Active != after.Active {
		add("active", before.Active, after.Active)
	}
	if before.ExternalID != after.ExternalID {
		add("externalId", before.ExternalID, after.ExternalID)
	}
	if before.DisplayName != after.DisplayName {
		add("displayName", before.DisplayName, after.DisplayName)
	}
	if strings.Join(before.Emails, "\x00") != strings.Join(after.Emails, "\x00") {
		add("emails", before.Emails, after.Emails)
	}
	if before.PasswordHash != "" && after.PasswordHash == "" {
		// A hash kept by an earlier version of the gateway, dropped now.
		a = append(a, "password=erased")
	}
	reported := map[string]bool{"userName": true, "active": true, "externalId": true, "displayName": true}
	if len(b) > 0 && strings.HasPrefix(b[len(b)-1], "emails=") {
		reported["emails"] = true
	}
	if changed := changedAttributes(before.Attributes, after.Attributes, reported); len(changed) > 0 {
		a = append(a, "changed="+strings.Join(changed, ","))
	}
	return summary(b), summary(a)
}

// groupSummary describes a group for created/deleted events.
func groupSummary(g *storage.Group, members int) string {
	parts := []string{kv("displayName", g.DisplayName)}
	if g.ExternalID != "" {
		parts = append(parts, kv("externalId", g.ExternalID))
	}
	if members >= 0 {
		parts = append(parts, kv("members", members))
	}
	return summary(parts)
}

func groupDiff(before, after *storage.Group) (string, string) {
	var b, a []string
	if before.DisplayName != after.DisplayName {
		b, a = append(b, kv("displayName", before.DisplayName)), append(a, kv("displayName", after.DisplayName))
	}
	if before.ExternalID != after.ExternalID {
		b, a = append(b, kv("externalId", before.ExternalID)), append(a, kv("externalId", after.ExternalID))
	}
	reported := map[string]bool{"displayName": true, "externalId": true}
	if changed := changedAttributes(before.Attributes, after.Attributes, reported); len(changed) > 0 {
		a = append(a, "changed="+strings.Join(changed, ","))
	}
	return summary(b), summary(a)
}

// changedAttributes lists the top-level attributes whose values differ,
// leaving out those already reported.
func changedAttributes(before, after json.RawMessage, reported map[string]bool) []string {
	if bytes.Equal(before, after) {
		return nil
	}
	b, errB := decodeStored(before)
	a, errA := decodeStored(after)
	if errB != nil || errA != nil {
		return []string{"attributes"}
	}
	seen := map[string]bool{}
	var out []string
	for k, v := range a {
		seen[k] = true
		if !reported[k] && !jsonEqual(v, b[k]) {
			out = append(out, k)
		}
	}
	for k := range b {
		if !seen[k] && !reported[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func memberSummary(m storage.Member) string {
	typ := m.Type
	if typ == "" {
		typ = storage.MemberUser
	}
	return "member=" + m.ID + " type=" + typ
}
