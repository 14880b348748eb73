package testenv

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// Region and AccountID are what every local service pretends to be.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// Moto is a running moto server (DynamoDB, S3, EventBridge, SQS, Secrets Manager).
type Moto struct {
	Endpoint string
	// Admin are the credentials of the admin user: allowed everything. With IAM
	// enforced they are the only credentials the stack itself (seeding, resets,
	// tests' direct reads) can use; without, any credentials work and Admin is the
	// dummy pair.
	Admin Credentials
	// EnforcesIAM reports whether moto authenticates and authorizes every request.
	EnforcesIAM bool
	proc        *Process
}

// Credentials are an access key pair.
type Credentials struct {
	AccessKeyID     string `json:"aws_access_key_id"`
	SecretAccessKey string `json:"aws_secret_access_key"`
}

// IAMUser is an IAM user for moto to create before it serves its first request: the
// stand-in of one function's execution role, with that role's policies inline.
type IAMUser struct {
	Name        string         `json:"name"`
	Credentials Credentials    `json:"credentials"`
	Inline      []InlinePolicy `json:"inline"`
	// Managed are the ARNs of managed policies to attach.
	Managed []string `json:"managed"`
}

// InlinePolicy is one named policy document.
type InlinePolicy struct {
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

// MotoOptions configure StartMotoWith.
type MotoOptions struct {
	// EnforceIAM makes moto check the signature of every request and evaluate the
	// caller's IAM policies (INITIAL_NO_AUTH_ACTION_COUNT=0): only Admin and Users
	// can call it, each within its policies.
	EnforceIAM bool
	// Users are created with EnforceIAM, before moto serves.
	Users []IAMUser
}

// StartMoto starts moto_server on a free loopback port, without IAM enforcement.
// It runs moto through the single-threaded launcher in tools/ so that conditional
// writes are serialised the way DynamoDB serialises them (the race test is the judge).
func StartMoto() (*Moto, error) { return StartMotoWith(MotoOptions{}) }

// StartMotoWith starts moto as StartMoto does, with IAM enforced when opts say so.
func StartMotoWith(opts MotoOptions) (*Moto, error) {
	py, err := Tool("venv/bin/python")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &Moto{Admin: Credentials{AccessKeyID: "test", SecretAccessKey: "test"}}
	var env []string
	if opts.EnforceIAM {
		if m.Admin, err = NewCredentials(); err != nil {
			return nil, err
		}
		users, err := writeUsers(opts.Users)
		if err != nil {
			return nil, err
		}
		defer os.Remove(users)
		m.EnforcesIAM = true
		env = []string{"INITIAL_NO_AUTH_ACTION_COUNT=0",
			"TENANTFLOW_MOTO_ADMIN=" + m.Admin.AccessKeyID + ":" + m.Admin.SecretAccessKey,
			"TENANTFLOW_MOTO_USERS=" + users}
	}
	launcher := filepath.Join(RepoRoot(), "tools", "moto_server.py")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := StartProcess("moto", addr, 60*time.Second, env, py, launcher, "127.0.0.1", fmt.Sprint(port))
	if err != nil {
		return nil, err
	}
	m.Endpoint, m.proc = "http://"+addr, p
	return m, nil
}

// writeUsers hands the users to the launcher in a file: their keys stay out of the
// process list and the environment of everything moto starts.
func writeUsers(users []IAMUser) (string, error) {
	if users == nil {
		users = []IAMUser{}
	}
	data, err := json.Marshal(users)
	if err != nil {
		return "", fmt.Errorf("moto users: %w", err)
	}
	f, err := os.CreateTemp("", "moto-users-*.json")
	if err != nil {
		return "", fmt.Errorf("moto users: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("moto users: %w", err)
	}
	return f.Name(), f.Close()
}

// NewCredentials returns a random access key pair in the shape of an IAM user's
// (moto treats AKIA keys as IAM users' keys).
func NewCredentials() (Credentials, error) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 16+40)
	if _, err := rand.Read(b); err != nil {
		return Credentials{}, fmt.Errorf("new access key: %w", err)
	}
	id, secret := []byte("AKIA"), make([]byte, 40)
	for _, c := range b[:16] {
		id = append(id, alnum[int(c)%len(alnum)])
	}
	for i, c := range b[16:] {
		secret[i] = alnum[int(c)%len(alnum)]
	}
	return Credentials{AccessKeyID: string(id), SecretAccessKey: string(secret)}, nil
}

// Config returns an SDK config for moto with the admin credentials.
func (m *Moto) Config() aws.Config {
	return AWSConfigWith(m.Endpoint, m.Admin)
}

// Close stops moto.
func (m *Moto) Close() {
	if m.proc != nil {
		m.proc.Stop()
	}
}

// PID is moto's process id.
func (m *Moto) PID() int { return m.proc.PID() }

// AWSConfig returns an SDK config for endpoint with dummy static credentials: enough
// for a moto that does not enforce IAM.
func AWSConfig(endpoint string) aws.Config {
	return AWSConfigWith(endpoint, Credentials{AccessKeyID: "test", SecretAccessKey: "test"})
}

// AWSConfigWith returns an SDK config for endpoint signing with creds.
func AWSConfigWith(endpoint string, creds Credentials) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// AWSEnv is the environment a child process (a Lambda bootstrap) needs to reach moto
// through the SDK's standard variables — no endpoint code in handlers — with dummy
// credentials; a stack enforcing IAM overrides them per function.
func AWSEnv(endpoint string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_SESSION_TOKEN=",
		"AWS_REGION=" + Region, "AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// RepoRoot finds the module root (the folder holding go.mod) from the working directory.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

var (
	tableDefsOnce sync.Once
	tableDefs     map[string]*dynamodb.CreateTableInput
	tableDefsErr  error
)

// TableDefinitions returns CreateTable inputs for every AWS::DynamoDB::Table of
// template.yaml, keyed by logical id, with TableName unset.
func TableDefinitions() (map[string]*dynamodb.CreateTableInput, error) {
	tableDefsOnce.Do(func() {
		tableDefs, tableDefsErr = loadTableDefs(filepath.Join(RepoRoot(), "template.yaml"))
	})
	return tableDefs, tableDefsErr
}

// cfnTable mirrors the AWS::DynamoDB::Table properties the project uses.
type cfnTable struct {
	AttributeDefinitions   []struct{ AttributeName, AttributeType string }
	KeySchema              []struct{ AttributeName, KeyType string }
	GlobalSecondaryIndexes []struct {
		IndexName  string
		KeySchema  []struct{ AttributeName, KeyType string }
		Projection struct{ ProjectionType string }
	}
	TableName string
}

func loadTableDefs(path string) (map[string]*dynamodb.CreateTableInput, error) {
	tpl, err := samtemplate.Load(path, samtemplate.Options{})
	if err != nil {
		return nil, err
	}
	out := map[string]*dynamodb.CreateTableInput{}
	for _, r := range tpl.ResourcesOfType("AWS::DynamoDB::Table") {
		raw, err := json.Marshal(r.Properties)
		if err != nil {
			return nil, err
		}
		var t cfnTable
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("table %s: %w", r.LogicalID, err)
		}
		in := &dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest}
		for _, a := range t.AttributeDefinitions {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(a.AttributeName), AttributeType: types.ScalarAttributeType(a.AttributeType)})
		}
		in.KeySchema = keySchema(t.KeySchema)
		for _, g := range t.GlobalSecondaryIndexes {
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
				IndexName: aws.String(g.IndexName), KeySchema: keySchema(g.KeySchema),
				Projection: &types.Projection{ProjectionType: types.ProjectionType(g.Projection.ProjectionType)},
			})
		}
		out[r.LogicalID] = in
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s declares no DynamoDB table", path)
	}
	return out, nil
}

func keySchema(ks []struct{ AttributeName, KeyType string }) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)}
	}
	return out
}

// CreateTables creates every template table on db with names prefix+LogicalID and
// returns logical id → table name.
func CreateTables(ctx context.Context, db *dynamodb.Client, prefix string) (map[string]string, error) {
	defs, err := TableDefinitions()
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for id, def := range defs {
		in := *def
		in.TableName = aws.String(prefix + id)
		if _, err := db.CreateTable(ctx, &in); err != nil {
			return nil, fmt.Errorf("create table %s: %w", *in.TableName, err)
		}
		names[id] = *in.TableName
	}
	return names, nil
}
