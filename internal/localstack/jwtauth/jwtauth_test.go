package jwtauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://auth.example.com/"
	testAudience = "tenantflow"
)

// RSA key generation dominates the run time, so the tests share one key.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestAuthority(t *testing.T, mutate ...func(*Config)) *Authority {
	t.Helper()
	cfg := Config{Issuer: testIssuer, Audience: []string{testAudience}, Now: func() time.Time { return t0 }}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := NewWithKey(cfg, testKey())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestVerify(t *testing.T) {
	a := newTestAuthority(t)
	mint := func(c Claims) string {
		t.Helper()
		tok, err := a.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := mint(OperatorClaims())
	other := newTestAuthority(t, func(c *Config) { c.Issuer = "https://evil.example.com/" })
	foreignIss, err := other.Mint(OperatorClaims())
	if err != nil {
		t.Fatal(err)
	}

	// A token with a valid signature whose payload was swapped for another.
	parts := strings.Split(valid, ".")
	forged, _ := json.Marshal(map[string]any{"sub": "operator", "scope": "tenants/admin", "iss": testIssuer, "aud": testAudience, "exp": t0.Add(time.Hour).Unix()})
	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	sig := []byte(parts[2])
	// Another base64url letter at a position that is not the last: the token stays
	// well-formed and the decoded signature changes. (Flipping a bit is not enough:
	// '-', '_' and 'z' would leave the alphabet, and the key is random per run.)
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)

	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "exp": t0.Add(time.Hour).Unix(), "sub": "operator"})
	noneTok.Header["kid"] = a.KeyID()
	none, err := noneTok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	// The classic key-confusion attack: HS256 keyed with the published public key.
	pubDER, _ := x509.MarshalPKIXPublicKey(a.PublicKey())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsTok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "exp": t0.Add(time.Hour).Unix(), "sub": "operator"})
	hsTok.Header["kid"] = a.KeyID()
	hs256, err := hsTok.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}

	unknownKid := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "exp": t0.Add(time.Hour).Unix()})
	unknownKid.Header["kid"] = "someone-else"
	wrongKid, err := unknownKid.SignedString(testKey())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		header string
		want   error // nil: accepted
		desc   string
	}{
		{"valid bearer", "Bearer " + valid, nil, ""},
		{"valid bare token", valid, nil, ""},
		{"valid lower-case scheme", "bearer " + valid, nil, ""},
		{"aud array", "Bearer " + mint(Claims{"aud": []string{"other", testAudience}}), nil, ""},
		{"client_id instead of aud", "Bearer " + mint(Claims{"aud": nil, "client_id": testAudience}), nil, ""},
		{"inside leeway", "Bearer " + mint(Claims{"exp": t0.Add(-2 * time.Second)}), nil, ""},
		{"missing header", "", ErrNoToken, ""},
		{"blank header", "   ", ErrNoToken, ""},
		{"expired", "Bearer " + mint(Claims{"exp": t0.Add(-time.Minute)}), ErrExpired, "the token has expired"},
		{"not yet valid", "Bearer " + mint(Claims{"nbf": t0.Add(time.Minute)}), ErrNotYetValid, ""},
		{"issued in the future", "Bearer " + mint(Claims{"iat": t0.Add(time.Minute)}), ErrIssuedInFuture, ""},
		{"no exp", "Bearer " + mint(Claims{"exp": nil}), ErrMissingExp, ""},
		{"wrong issuer", "Bearer " + foreignIss, ErrIssuer, ""},
		{"wrong audience", "Bearer " + mint(Claims{"aud": "someone-else"}), ErrAudience, "the token does not have a valid audience"},
		{"wrong audience array", "Bearer " + mint(Claims{"aud": []string{"a", "b"}}), ErrAudience, ""},
		{"no aud no client_id", "Bearer " + mint(Claims{"aud": nil}), ErrAudience, ""},
		{"tampered payload", "Bearer " + tamperedPayload, ErrSignature, ""},
		{"tampered signature", "Bearer " + tamperedSig, ErrSignature, ""},
		{"alg none", "Bearer " + none, ErrAlgorithm, "signing method none is invalid"},
		{"HS256 with public key", "Bearer " + hs256, ErrAlgorithm, "signing method HS256 is invalid"},
		{"unknown kid", "Bearer " + wrongKid, ErrUnknownKey, ""},
		{"garbage", "Bearer not-a-token", ErrMalformed, "token contains an invalid number of segments"},
		{"bad header segment", "Bearer !!.e30.sig", ErrMalformed, ""},
		{"scheme only", "Bearer", ErrMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := a.Verify(tc.header)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.String("iss") != testIssuer {
					t.Errorf("iss = %q", claims.String("iss"))
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err %T is not a *TokenError", err)
			}
			if tc.desc != "" && te.Description != tc.desc {
				t.Errorf("description = %q, want %q", te.Description, tc.desc)
			}
			if claims != nil {
				t.Errorf("claims returned with error: %v", claims)
			}
		})
	}
}

func TestMintHelpersAndFlatten(t *testing.T) {
	a := newTestAuthority(t)
	op, err := a.OperatorToken()
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Verify("Bearer " + op)
	if err != nil {
		t.Fatal(err)
	}
	flat := c.Flatten()
	jti := flat["jti"]
	if len(jti) != 36 || strings.Count(jti, "-") != 4 {
		t.Errorf("jti %q is not a UUID", jti)
	}
	delete(flat, "jti")
	want := map[string]string{
		"sub": "operator", "scope": "tenants/admin", "iss": testIssuer, "aud": testAudience,
		"iat": "1772366400", "nbf": "1772366400", "exp": "1772409600", // t0, t0, t0+12h
	}
	if !reflect.DeepEqual(flat, want) {
		t.Errorf("Flatten = %v\nwant %v", flat, want)
	}
	if got := c.Scopes(); !reflect.DeepEqual(got, []string{"tenants/admin"}) {
		t.Errorf("Scopes = %v", got)
	}
	if !c.HasAnyScope([]string{"x", AdminScope}) || c.HasAnyScope([]string{"x"}) || !c.HasAnyScope(nil) {
		t.Error("HasAnyScope")
	}

	tt, err := a.TenantToken("tenant_acme")
	if err != nil {
		t.Fatal(err)
	}
	c, err = a.Verify(tt)
	if err != nil {
		t.Fatal(err)
	}
	if c.String("sub") != "user@tenant_acme" || c.String(TenantIDClaim) != "tenant_acme" {
		t.Errorf("tenant claims = %v", c)
	}
	if c.Scopes() != nil {
		t.Errorf("tenant token has scopes %v", c.Scopes())
	}
	if _, err := a.TenantToken(""); err == nil {
		t.Error("TenantToken accepted an empty id")
	}

	// Non-string claims, rendered the way API Gateway does.
	tok, err := a.Mint(Claims{
		"cognito:groups": []string{"admin", "ops"},
		"aud":            []string{testAudience, "other"},
		"n":              12.5,
		"flag":           true,
		"obj":            map[string]any{"k": "v"},
		"scp":            []string{"a", "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err = a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	flat = c.Flatten()
	for k, v := range map[string]string{"cognito:groups": "[admin ops]", "aud": "[tenantflow other]", "n": "12.5", "flag": "true", "obj": `{"k":"v"}`} {
		if flat[k] != v {
			t.Errorf("Flatten()[%q] = %q, want %q", k, flat[k], v)
		}
	}
	if _, ok := (Claims{"gone": nil}).Flatten()["gone"]; ok {
		t.Error("null claim was rendered")
	}
	if _, ok := flat["gone"]; ok {
		t.Error("nil claim was minted")
	}
	if got := c.Scopes(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("scp Scopes = %v", got)
	}
}

func TestJWKSVerifiesMintedTokens(t *testing.T) {
	a := newTestAuthority(t)
	var set struct {
		Keys []struct{ Kty, Use, Alg, Kid, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal(a.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.Kid != a.KeyID() {
		t.Fatalf("jwk = %+v", k)
	}
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	tok, _ := a.OperatorToken()
	// An independent verifier that knows only the JWKS accepts the token.
	_, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != k.Kid {
			return nil, errors.New("kid")
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyDirPersistsKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	cfg := Config{Issuer: testIssuer, Audience: []string{testAudience}, KeyDir: dir}

	// Two devstacks starting at once must end up with one key.
	var wg sync.WaitGroup
	auths := make([]*Authority, 2)
	errs := make([]error, 2)
	for i := range auths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			auths[i], errs[i] = New(cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if auths[0].KeyID() != auths[1].KeyID() {
		t.Fatal("concurrent starts created different keys")
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	tok, err := auths[0].OperatorToken()
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Verify("Bearer " + tok); err != nil {
		t.Fatalf("token did not survive a restart: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Error("a corrupt key file was accepted")
	}
}

func TestChallenge(t *testing.T) {
	a := newTestAuthority(t)
	_, errNo := a.Verify("")
	if got := Challenge(errNo, nil); got != "Bearer" {
		t.Errorf("no token: %q", got)
	}
	tok, _ := a.Mint(Claims{"aud": "x"})
	_, errAud := a.Verify(tok)
	want := `Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience"`
	if got := Challenge(errAud, nil); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := Challenge(errAud, []string{"a", "b"}); !strings.HasPrefix(got, `Bearer scope="a b" `) {
		t.Errorf("scoped: %s", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no issuer":      {Audience: []string{"a"}},
		"no audience":    {Issuer: "i"},
		"empty audience": {Issuer: "i", Audience: []string{""}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWithKey(Config{Issuer: "i", Audience: []string{"a"}}, small); err == nil {
		t.Error("1024-bit key accepted")
	}
}
