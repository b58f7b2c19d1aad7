package googlefake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
)

// ServiceAccount is a generated Google service account: its key file (the
// JSON Google's console downloads, with token_uri pointing at the fake)
// and the public half the fake's token endpoint verifies grants with.
type ServiceAccount struct {
	ClientEmail string
	KeyID       string
	Key         *rsa.PrivateKey
	// JSON is the credentials file, as golang.org/x/oauth2/google reads it.
	JSON []byte
}

// newServiceAccount generates a 2048-bit key (the size Google issues) and
// writes the key file in Google's documented layout.
func newServiceAccount(tokenURI string) (*ServiceAccount, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	sa := &ServiceAccount{
		ClientEmail: "portcullis-sync@fake-project.iam.gserviceaccount.com",
		KeyID:       fmt.Sprintf("%x", key.PublicKey.N.Bytes()[:20]),
		Key:         key,
	}
	sa.JSON, err = json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  "fake-project",
		"private_key_id":              sa.KeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                sa.ClientEmail,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
	}, "", "  ")
	return sa, err
}
