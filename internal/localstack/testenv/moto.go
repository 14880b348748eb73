package testenv

import (
	"context"
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
	proc     *Process
}

// StartMoto starts moto_server on a free loopback port. It runs moto through the
// single-threaded launcher in tools/ so that conditional writes are serialised the way
// DynamoDB serialises them (the race test is the judge).
func StartMoto() (*Moto, error) {
	py, err := Tool("venv/bin/python")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	launcher := filepath.Join(RepoRoot(), "tools", "moto_server.py")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := StartProcess("moto", addr, 60*time.Second, nil, py, launcher, "127.0.0.1", fmt.Sprint(port))
	if err != nil {
		return nil, err
	}
	return &Moto{Endpoint: "http://" + addr, proc: p}, nil
}

// Close stops moto.
func (m *Moto) Close() {
	if m.proc != nil {
		m.proc.Stop()
	}
}

// PID is moto's process id.
func (m *Moto) PID() int { return m.proc.PID() }

// AWSConfig returns an SDK config for endpoint with dummy static credentials.
func AWSConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// AWSEnv is the environment a child process (a Lambda bootstrap) needs to reach moto
// through the SDK's standard variables — no endpoint code in handlers.
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
