package clientaddr

import (
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
		{long, long[:64] + "…"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"[::1]:80", "::/64"},
		{"", ""},
	} {
		if got := Key(c.in); got != c.want {
			t.Errorf("Key(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
