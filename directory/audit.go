package directory

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/storage"
)

// Actor is the audit actor of every change the sync makes.
const Actor = "google"

// EventSyncFailed is appended when a full sync fails; storage.EventSyncFailed.
const EventSyncFailed = storage.EventSyncFailed

// Audit summaries follow the SCIM layer's "key=value" form.

func quote(s string) string {
	if len(s) > 128 {
		s = s[:127] + "…"
	}
	return strconv.Quote(s)
}

func userSummary(u *storage.User) string {
	return fmt.Sprintf("userName=%s active=%v externalId=%s", quote(u.UserName), u.Active, quote(u.ExternalID))
}

func userDiff(before, after *storage.User) (string, string) {
	var b, a []string
	add := func(k, bv, av string) { b, a = append(b, k+"="+bv), append(a, k+"="+av) }
	if before.UserName != after.UserName {
		add("userName", quote(before.UserName), quote(after.UserName))
	}
	if before.Active != after.Active {
		add("active", strconv.FormatBool(before.Active), strconv.FormatBool(after.Active))
	}
	if before.ExternalID != after.ExternalID {
		add("externalId", quote(before.ExternalID), quote(after.ExternalID))
	}
	if before.DisplayName != after.DisplayName {
		add("displayName", quote(before.DisplayName), quote(after.DisplayName))
	}
	if strings.Join(before.Emails, "\x00") != strings.Join(after.Emails, "\x00") {
		add("emails", quote(strings.Join(before.Emails, ",")), quote(strings.Join(after.Emails, ",")))
	}
	if before.Source != after.Source {
		add("source", quote(before.Source), quote(after.Source))
	}
	if string(before.Attributes) != string(after.Attributes) {
		a = append(a, "changed=name")
	}
	return strings.Join(b, " "), strings.Join(a, " ")
}

func groupSummary(g *storage.Group) string {
	return fmt.Sprintf("displayName=%s externalId=%s", quote(g.DisplayName), quote(g.ExternalID))
}

func memberSummary(userID string) string { return "member=" + userID + " type=" + storage.MemberUser }
