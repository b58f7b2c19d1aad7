package scimhandler_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestEventsCarryNames: every audit event of a SCIM write names the client
// (its User-Agent, which says which IdP calls) and the user or group, also
// when the resource is gone (deleted) or renamed in the same request.
func TestEventsCarryNames(t *testing.T) {
	e := newEnv(t)
	const okta = "Okta SCIM Client 1.0"
	ua := []string{"User-Agent", okta}
	user := func(name string) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": name}
	}
	alice := str(e.want(e.do("POST", "/Users", user("alice@example.com"), ua...), http.StatusCreated).obj(t)["id"])
	bob := str(e.want(e.do("POST", "/Users", user("bob@example.com"), ua...), http.StatusCreated).obj(t)["id"])
	group := str(e.want(e.do("POST", "/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Engineering",
		"members": []any{map[string]any{"value": alice}}}, ua...), http.StatusCreated).obj(t)["id"])
	patch := func(ops ...map[string]any) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
	}
	e.want(e.do("PATCH", "/Groups/"+group, patch(
		map[string]any{"op": "replace", "path": "displayName", "value": "R&D"},
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": bob}}}), ua...), http.StatusNoContent)
	e.want(e.do("PATCH", "/Users/"+bob, patch(map[string]any{"op": "replace", "path": "active", "value": false}),
		"User-Agent", "Microsoft.Azure.AD.Provisioning\t "+strings.Repeat("x", 200)), http.StatusOK)
	e.want(e.do("DELETE", "/Users/"+alice, nil, ua...), http.StatusNoContent)
	e.want(e.do("DELETE", "/Groups/"+group, nil, ua...), http.StatusNoContent)
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer wrong", "User-Agent", "Google Workspace"), http.StatusUnauthorized)

	entra := "Microsoft.Azure.AD.Provisioning " + strings.Repeat("x", 100-len("Microsoft.Azure.AD.Provisioning ")) + "…"
	tests := []struct {
		typ, resourceID, resourceName, actorName string
	}{
		{storage.EventUserCreated, alice, "alice@example.com", okta},
		{storage.EventUserCreated, bob, "bob@example.com", okta},
		{storage.EventGroupCreated, group, "Engineering", okta},
		{storage.EventGroupUpdated, group, "R&D", okta},
		{storage.EventUserDeactivated, bob, "bob@example.com", entra},
		{storage.EventUserDeleted, alice, "alice@example.com", okta},
		{storage.EventGroupDeleted, group, "R&D", okta},
		{storage.EventTokenRejected, "", "", "Google Workspace"},
	}
	all := e.events()
	for _, tt := range tests {
		found := false
		for _, ev := range all {
			if ev.Type != tt.typ || ev.ResourceID != tt.resourceID {
				continue
			}
			found = true
			if ev.ResourceName != tt.resourceName || ev.ActorName != tt.actorName {
				t.Errorf("%s %s: resourceName %q actorName %q, want %q %q", tt.typ, tt.resourceID, ev.ResourceName, ev.ActorName, tt.resourceName, tt.actorName)
			}
		}
		if !found {
			t.Errorf("no %s event of %q", tt.typ, tt.resourceID)
		}
	}
	// Membership events name the group as it was named in the request.
	for _, ev := range e.events(storage.EventMemberAdded) {
		if ev.ResourceName == "" || ev.ActorName != okta {
			t.Errorf("member event without names: %+v", ev)
		}
	}
	// The admin's token events keep the admin as actor, unnamed.
	for _, ev := range e.events(storage.EventTokenCreated) {
		if ev.Actor != "admin" || ev.ActorName != "" {
			t.Errorf("token event %+v", ev)
		}
	}
}
