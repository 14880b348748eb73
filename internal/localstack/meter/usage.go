// Package meter counts what one flow run costs on the local stack, from outside the
// functions, in the units AWS bills: Lambda invocations and their durations (the
// local Lambda service's counters, the durations from Step Functions' history and
// from the invocations the caller makes), Step Functions state transitions (the
// StateEntered events of each execution's history, plus retries), the DynamoDB,
// EventBridge, S3 and Secrets Manager requests of each function's IAM principal with
// DynamoDB's request units (tools/moto_server.py meters them), and the Stripe API
// calls (the recording proxy). docs/cost.md turns the figures into dollars; the test
// of this package keeps its figures table true.
//
// Nothing deployed imports it: it is local-stack tooling like stack and stacktest.
package meter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// UsagePath is where tools/moto_server.py serves its usage meter: GET reports
// (?storage=1 adds the tables' sizes), DELETE zeroes the counters and starts metering.
const UsagePath = "/_tenantflow/usage"

// Counters are one action's figures for one principal. Which fields are set depends
// on the service: DynamoDB fills the item, byte and unit fields, EventBridge Entries
// and Chunks, S3 Class and the byte counts.
type Counters struct {
	Requests int `json:"requests"`
	// Errors are requests answered with an error, ConditionalFailures those of them
	// whose condition failed (DynamoDB bills their write units all the same).
	Errors              int `json:"errors"`
	ConditionalFailures int `json:"conditional_failures,omitempty"`

	ItemsRead    int     `json:"items_read,omitempty"`
	BytesRead    int64   `json:"bytes_read,omitempty"`
	ItemsWritten int     `json:"items_written,omitempty"`
	BytesWritten int64   `json:"bytes_written,omitempty"`
	RRU          float64 `json:"rru,omitempty"`
	// WRU includes IndexWRU, the write units of the global secondary indexes.
	WRU      float64 `json:"wru,omitempty"`
	IndexWRU float64 `json:"index_wru,omitempty"`

	// Entries are PutEvents entries, Chunks the 64 KB chunks EventBridge bills.
	Entries int `json:"entries,omitempty"`
	Chunks  int `json:"chunks,omitempty"`

	// Class is the S3 request class: tier1 (PUT, COPY, POST, LIST), tier2 (GET and
	// the rest) or free (DELETE, CANCEL).
	Class    string `json:"class,omitempty"`
	BytesIn  int64  `json:"bytes_in,omitempty"`
	BytesOut int64  `json:"bytes_out,omitempty"`
}

// Add adds o to c (Class is kept, or taken from o).
func (c *Counters) Add(o Counters) {
	c.Requests += o.Requests
	c.Errors += o.Errors
	c.ConditionalFailures += o.ConditionalFailures
	c.ItemsRead += o.ItemsRead
	c.BytesRead += o.BytesRead
	c.ItemsWritten += o.ItemsWritten
	c.BytesWritten += o.BytesWritten
	c.RRU += o.RRU
	c.WRU += o.WRU
	c.IndexWRU += o.IndexWRU
	c.Entries += o.Entries
	c.Chunks += o.Chunks
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	if c.Class == "" {
		c.Class = o.Class
	}
}

// Actions are one service's counters by action ("GetItem", "PutEvents", ...).
type Actions map[string]Counters

// Total sums every action.
func (a Actions) Total() Counters {
	var t Counters
	for _, c := range a {
		t.Add(c)
	}
	t.Class = ""
	return t
}

// Services are one principal's actions by service ("dynamodb", "events", "s3",
// "secretsmanager", ...).
type Services map[string]Actions

// Usage is what the emulator's meter reports.
type Usage struct {
	Enabled bool `json:"enabled"`
	// Principals are by IAM user name: a function's logical id in the local stack,
	// devstack-admin for the stack itself.
	Principals map[string]Services `json:"principals"`
	// Tables is set when asked for (ReadUsage with storage).
	Tables map[string]TableStorage `json:"tables,omitempty"`
}

// TableStorage is what a table holds as DynamoDB bills storage: items and their bytes,
// each with 100 bytes of overhead, and the same for each index.
type TableStorage struct {
	Items   int                     `json:"items"`
	Bytes   int64                   `json:"bytes"`
	Indexes map[string]TableStorage `json:"indexes,omitempty"`
}

// ReadUsage fetches the meter of the moto at endpoint; storage adds every table's
// size (it reads every item: seconds at a million).
func ReadUsage(ctx context.Context, endpoint string, storage bool) (*Usage, error) {
	url := endpoint + UsagePath
	if storage {
		url += "?storage=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	body, err := do(req)
	if err != nil {
		return nil, err
	}
	u := &Usage{}
	if err := json.Unmarshal(body, u); err != nil {
		return nil, fmt.Errorf("usage meter: %w", err)
	}
	return u, nil
}

// ResetUsage zeroes the meter of the moto at endpoint and starts it.
func ResetUsage(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint+UsagePath, nil)
	if err != nil {
		return err
	}
	_, err = do(req)
	return err
}

func do(req *http.Request) ([]byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("usage meter: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("usage meter: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("usage meter: %s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}
