// Package jwtauth is devstack's stand-in for the JWT authorizer of an API Gateway
// HTTP API: it owns a local RS256 signing key, publishes it as a JWKS document, mints
// tokens for developers and tests, and verifies bearer tokens the way API Gateway does
// before a request reaches the function.
//
// In production API Gateway validates tokens issued by a real identity provider and the
// function only reads requestContext.authorizer.jwt; nothing in this package runs there.
//
// # Keys
//
// With [Config].KeyDir empty the key is generated in memory and dies with the process:
// right for tests. With KeyDir set, the key is read from KeyDir/[KeyFile] (PKCS#8 PEM)
// or, the first time, generated and written there with mode 0600, so tokens handed to
// a developer by `make dev` keep working across restarts. The key id (kid) is the RFC
// 7638 thumbprint of the public key, so it is stable for a given key file.
package jwtauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantflow/tenantflow/internal/localstack/randid"
)

// Names and defaults shared with the API's authorization rules (docs/api.md).
const (
	// OperatorSubject is the sub of an operator token.
	OperatorSubject = "operator"
	// AdminScope is the scope that may act on any tenant.
	AdminScope = "tenants/admin"
	// TenantIDClaim is the claim that binds a token to one tenant.
	TenantIDClaim = "tenant_id"
	// DefaultTTL is how long a minted token lives unless the claims or Config say otherwise.
	DefaultTTL = 12 * time.Hour
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 5 * time.Second
	// KeyFile is the name of the PEM file kept in Config.KeyDir.
	KeyFile = "jwt-signing-key.pem"
	// Algorithm is the only signing algorithm minted and accepted.
	Algorithm = "RS256"
)

// keyBits is the RSA modulus size of generated keys; 2048 is what identity providers
// such as Cognito use and is quick enough to generate at start.
const keyBits = 2048

// Config describes the authority: the template's JwtIssuer and JwtAudience parameters
// plus where the key lives.
type Config struct {
	// Issuer is the exact iss tokens must carry (API Gateway compares it byte for
	// byte, trailing slash included). Required.
	Issuer string
	// Audience lists the accepted audiences; a token passes when its aud (or, without
	// aud, its client_id) names one of them. Minted tokens carry the first. Required.
	Audience []string
	// KeyDir, when set, holds the signing key so it survives restarts (see package doc).
	KeyDir string
	// TTL is the lifetime of minted tokens; zero means DefaultTTL.
	TTL time.Duration
	// Leeway is the clock skew tolerated when checking exp, nbf and iat; zero means
	// DefaultLeeway, a negative value means none.
	Leeway time.Duration
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// Authority signs and verifies tokens with one RS256 key. It is safe for concurrent use.
type Authority struct {
	issuer   string
	audience []string
	ttl      time.Duration
	leeway   time.Duration
	now      func() time.Time
	key      *rsa.PrivateKey
	kid      string
	jwks     []byte
	parser   *jwt.Parser
}

// New returns an Authority for cfg, loading or creating the key as cfg.KeyDir says.
func New(cfg Config) (*Authority, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var key *rsa.PrivateKey
	var err error
	if cfg.KeyDir == "" {
		key, err = rsa.GenerateKey(rand.Reader, keyBits)
	} else {
		key, err = loadOrCreateKey(cfg.KeyDir)
	}
	if err != nil {
		return nil, err
	}
	return newAuthority(cfg, key)
}

// NewWithKey returns an Authority that signs with key instead of loading or generating
// one; cfg.KeyDir is ignored. It lets a test suite share one key between many
// authorities (RSA key generation is the slow part of New).
func NewWithKey(cfg Config, key *rsa.PrivateKey) (*Authority, error) {
	if key == nil {
		return nil, errors.New("jwtauth: nil key")
	}
	if key.N.BitLen() < keyBits {
		return nil, fmt.Errorf("jwtauth: RSA key has %d bits, need at least %d", key.N.BitLen(), keyBits)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newAuthority(cfg, key)
}

func (cfg Config) validate() error {
	if cfg.Issuer == "" {
		return errors.New("jwtauth: issuer is required")
	}
	if len(cfg.Audience) == 0 {
		return errors.New("jwtauth: at least one audience is required")
	}
	for _, aud := range cfg.Audience {
		if aud == "" {
			return errors.New("jwtauth: empty audience")
		}
	}
	return nil
}

func newAuthority(cfg Config, key *rsa.PrivateKey) (*Authority, error) {
	a := &Authority{
		issuer:   cfg.Issuer,
		audience: append([]string(nil), cfg.Audience...),
		ttl:      cfg.TTL,
		leeway:   cfg.Leeway,
		now:      cfg.Now,
		key:      key,
		kid:      thumbprint(&key.PublicKey),
	}
	if a.ttl <= 0 {
		a.ttl = DefaultTTL
	}
	switch {
	case a.leeway == 0:
		a.leeway = DefaultLeeway
	case a.leeway < 0:
		a.leeway = 0
	}
	if a.now == nil {
		a.now = time.Now
	}
	jwks, err := json.Marshal(jwkSet{Keys: []jwk{publicJWK(&key.PublicKey, a.kid)}})
	if err != nil {
		return nil, err
	}
	a.jwks = jwks
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithJSONNumber(), // keep numeric claims as written: "1700000000", not 1.7e+09
		jwt.WithLeeway(a.leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return a, nil
}

// Issuer returns the iss minted into and required of tokens.
func (a *Authority) Issuer() string { return a.issuer }

// Audience returns the accepted audiences (a copy).
func (a *Authority) Audience() []string { return append([]string(nil), a.audience...) }

// KeyID returns the kid of the signing key, as published in the JWKS.
func (a *Authority) KeyID() string { return a.kid }

// PublicKey returns the verification key.
func (a *Authority) PublicKey() *rsa.PublicKey { return &a.key.PublicKey }

// JWKS returns the JSON Web Key Set document that publishes the public key
// ({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":...,"n":...,"e":...}]}).
// The returned slice is a copy.
func (a *Authority) JWKS() []byte { return append([]byte(nil), a.jwks...) }

// Mint signs c and returns the compact JWT. Registered claims the caller leaves out
// are filled in: iss, aud (the first audience), iat and nbf (now), exp (now + TTL) and
// a random jti. Values the caller sets win, which is how tests mint expired, foreign
// or not-yet-valid tokens; exp, iat and nbf may be given as time.Time, and a claim
// set to nil is left out of the token (e.g. {"exp": nil} mints a token without exp).
func (a *Authority) Mint(c Claims) (string, error) {
	now := a.now()
	out := make(jwt.MapClaims, len(c)+7)
	for k, v := range c {
		if t, ok := v.(time.Time); ok {
			v = t.Unix()
		}
		out[k] = v
	}
	setDefault(out, "iss", a.issuer)
	setDefault(out, "aud", a.audience[0])
	setDefault(out, "iat", now.Unix())
	setDefault(out, "nbf", now.Unix())
	setDefault(out, "exp", now.Add(a.ttl).Unix())
	if _, ok := out["jti"]; !ok {
		out["jti"] = randid.UUID()
	}
	for k, v := range out {
		if v == nil { // an explicit nil leaves the claim out, default or not
			delete(out, k)
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, out)
	tok.Header["kid"] = a.kid
	return tok.SignedString(a.key)
}

// OperatorToken mints a token for the platform operator: sub "operator", scope
// "tenants/admin".
func (a *Authority) OperatorToken() (string, error) { return a.Mint(OperatorClaims()) }

// TenantToken mints a token that may act only on tenantID: sub "user@<tenantID>",
// claim tenant_id.
func (a *Authority) TenantToken(tenantID string) (string, error) {
	if tenantID == "" {
		return "", errors.New("jwtauth: empty tenant id")
	}
	return a.Mint(TenantClaims(tenantID))
}

// OperatorClaims returns the claims of an operator token, for callers that want to
// adjust them (exp, extra claims) before Mint.
func OperatorClaims() Claims {
	return Claims{"sub": OperatorSubject, "scope": AdminScope}
}

// TenantClaims returns the claims of a token bound to tenantID, for callers that want
// to adjust them before Mint.
func TenantClaims(tenantID string) Claims {
	return Claims{"sub": "user@" + tenantID, TenantIDClaim: tenantID}
}

func setDefault(c jwt.MapClaims, k string, v any) {
	if _, ok := c[k]; !ok {
		c[k] = v
	}
}

// jwk is the public half of an RSA key as RFC 7517 writes it.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

func publicJWK(pub *rsa.PublicKey, kid string) jwk {
	return jwk{Kty: "RSA", Use: "sig", Alg: Algorithm, Kid: kid, N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required members in
// lexicographic order, base64url without padding.
func thumbprint(pub *rsa.PublicKey) string {
	doc := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(doc))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// loadOrCreateKey reads dir/KeyFile, or creates it. Creation writes a temporary file
// and hard-links it into place, so two devstacks starting at once agree on one key
// instead of one overwriting the other's.
func loadOrCreateKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	if key, err := readKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jwtauth: key dir: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("jwtauth: write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("jwtauth: write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("jwtauth: write key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) { // lost the race: use the winner's key
			return readKey(path)
		}
		return nil, fmt.Errorf("jwtauth: install key: %w", err)
	}
	return key, nil
}

func readKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("jwtauth: %s: no PEM block", path)
	}
	var parsed crypto.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("jwtauth: %s: unexpected PEM block %q", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s: not an RSA key", path)
	}
	if key.N.BitLen() < keyBits {
		return nil, fmt.Errorf("jwtauth: %s: RSA key has %d bits, need at least %d", path, key.N.BitLen(), keyBits)
	}
	return key, nil
}
