package cookieheader

import (
	"net/http"
	"strings"
	"testing"
)

// TestValueAgreesWithNetHTTP checks Value against Request.CookiesNamed on
// the spellings a browser, a proxy or an attacker may send.
func TestValueAgreesWithNetHTTP(t *testing.T) {
	const name = "portcullis_session"
	tests := []struct {
		name  string
		lines []string
	}{
		{"none", nil},
		{"only", []string{"portcullis_session=abc"}},
		{"first of several", []string{"portcullis_session=abc; _ga=GA1.2.3; theme=dark"}},
		{"middle", []string{"_ga=GA1.2.3; portcullis_session=abc; theme=dark"}},
		{"last", []string{"_ga=GA1.2.3; theme=dark; portcullis_session=abc"}},
		{"spaces and tabs", []string{" \t_ga=1 ;\t portcullis_session = abc ; x=y "}},
		{"quoted", []string{`portcullis_session="abc"`}},
		{"invalid value ignored", []string{`portcullis_session=a"b; portcullis_session=good`}},
		{"two lines", []string{"_ga=1", "portcullis_session=abc"}},
		{"duplicate same value", []string{"portcullis_session=abc; portcullis_session=abc"}},
		{"duplicate other value", []string{"portcullis_session=abc; portcullis_session=evil"}},
		{"prefix of name", []string{"portcullis_session_flow_x=1; portcullis_sessionx=2"}},
		{"empty value", []string{"portcullis_session="}},
		{"no equals", []string{"portcullis_session"}},
		{"empty pairs", []string{";;portcullis_session=abc;;"}},
		{"too many", []string{"portcullis_session=abc" + strings.Repeat(";a=b", maxCookies)}},
		{"at the limit", []string{"portcullis_session=abc" + strings.Repeat(";a=b", maxCookies-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Header: http.Header{}}
			if tt.lines != nil {
				r.Header["Cookie"] = tt.lines
			}
			wantValue, wantDistinct := "", 0
			for _, c := range r.CookiesNamed(name) {
				if wantDistinct == 0 || c.Value != wantValue {
					wantValue = c.Value
					wantDistinct++
				}
			}
			value, distinct := Value(r.Header, name)
			if value != wantValue || distinct != wantDistinct {
				t.Errorf("Value = %q, %d; net/http reads %q, %d", value, distinct, wantValue, wantDistinct)
			}
		})
	}
}

func TestValueDoesNotAllocate(t *testing.T) {
	h := http.Header{"Cookie": {"_ga=GA1.2.3; portcullis_session=abc; theme=dark"}}
	if n := testing.AllocsPerRun(100, func() { Value(h, "portcullis_session") }); n != 0 {
		t.Errorf("Value allocates %v times", n)
	}
}
