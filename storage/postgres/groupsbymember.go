package postgres

import (
	"slices"
	"strings"
)

// intern is b as a string, made once per distinct value through seen.
func intern(seen map[string]string, b []byte) string {
	if s, ok := seen[string(b)]; ok {
		return s
	}
	s := string(b)
	seen[s] = s
	return s
}

// membership is one row of memberships: a member and a group it is in.
type membership struct{ member, group string }

// groupsByMember is the groups of each member of in, in id order, as
// GroupsOfEach answers: every member's list a window of one slice.
func groupsByMember(in []membership) map[string][]string {
	slices.SortFunc(in, func(a, b membership) int {
		if c := strings.Compare(a.member, b.member); c != 0 {
			return c
		}
		return strings.Compare(a.group, b.group)
	})
	all := make([]string, len(in))
	for i, m := range in {
		all[i] = m.group
	}
	out := make(map[string][]string)
	for start := 0; start < len(in); {
		end := start + 1
		for end < len(in) && in[end].member == in[start].member {
			end++
		}
		out[in[start].member] = all[start:end:end]
		start = end
	}
	return out
}
