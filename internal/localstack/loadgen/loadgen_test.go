package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/loadgen"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// ScaleEnv set to "full" runs the figures (1,000 requests on 200 tenants, 50
// concurrent) instead of the small load of `make test` (96 on 24, 12 concurrent: about
// 20 s each for the load and the chaos run here); SeedEnv replays a seed.
// ChaosEnv replaces the chaos run's faults, e.g.
// "rate=0.9,after=0,only=PlanValidateFunction+PlanReleaseFunction" (rate, share
// after the handler, and the functions faulted, all but the API by default).
const (
	ScaleEnv = "TENANTFLOW_LOAD_SCALE"
	SeedEnv  = "TENANTFLOW_LOAD_SEED"
	ChaosEnv = "TENANTFLOW_LOAD_CHAOS"
)

// chaos is the chaos run's faults: 10% of the step invocations, half of them after
// the handler, unless ChaosEnv says otherwise.
func chaos(t *testing.T) *lambdasvc.Chaos {
	c := &lambdasvc.Chaos{Rate: 0.1, AfterShare: 0.5}
	v := os.Getenv(ChaosEnv)
	if v == "" {
		return c
	}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "rate":
			c.Rate, err = strconv.ParseFloat(val, 64)
		case "after":
			c.AfterShare, err = strconv.ParseFloat(val, 64)
		case "only":
			c.Functions = strings.Split(val, "+")
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			t.Fatalf("%s=%q: %v", ChaosEnv, v, err)
		}
	}
	return c
}

func size() loadgen.Config {
	if os.Getenv(ScaleEnv) == "full" {
		return loadgen.Config{Ops: 1000, Tenants: 200, Concurrency: 50, Timeout: 10 * time.Minute}
	}
	return loadgen.Config{Ops: 96, Tenants: 24, Concurrency: 12, Timeout: 3 * time.Minute}
}

func seed(t *testing.T) int64 {
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		return n
	}
	return time.Now().UnixNano()
}

// TestLifecycleLoad runs the lifecycle load through the api bootstrap and the local
// Step Functions service, then the same load with 10% of the step invocations failing
// at random (half before the handler, half after it), and fails on any integrity
// violation: a final state or plan other than the sequential replay of the tenant's
// accepted operations, audit transitions other than its operations', entitlements or a
// Stripe price off the plan, an operation left RUNNING, a tenant left busy, held or
// waiting for an operator. Without faults every answer and outcome must also be the
// model's. The seed is logged; TENANTFLOW_LOAD_SEED=<seed> replays it. At full size:
//
//	TENANTFLOW_LOAD_SCALE=full go test -timeout 30m -run TestLifecycleLoad -v ./internal/localstack/loadgen
func TestLifecycleLoad(t *testing.T) {
	sd := seed(t)
	t.Logf("seed %d (%s=%d replays it)", sd, SeedEnv, sd)
	for _, mode := range []struct {
		name  string
		chaos *lambdasvc.Chaos
	}{
		{"load", nil},
		{"chaos", chaos(t)},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s := st.Shared(t)
			cfg := size()
			cfg.Seed, cfg.Prefix, cfg.Chaos, cfg.Logf = sd, mode.name, mode.chaos, t.Logf
			rep, err := loadgen.Run(context.Background(), s, cfg)
			if rep != nil {
				t.Log(rep.Summary())
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range rep.Violations {
				if i == 50 {
					t.Errorf("... %d more", len(rep.Violations)-i)
					break
				}
				t.Errorf("%s", v)
			}
			if rep.Accepted == 0 || rep.Succeeded == 0 {
				t.Errorf("nothing ran: %+v", rep)
			}
			if mode.chaos != nil && rep.Faults.Before == 0 && rep.Faults.After == 0 {
				t.Errorf("chaos injected no fault")
			}
			for _, why := range rep.Settlements {
				t.Logf("settled as AWS would: %s", why)
			}
			if mode.chaos == nil && rep.Faults != (lambdasvc.ChaosStats{}) {
				t.Errorf("faults without chaos: %+v", rep.Faults)
			}
		})
	}
}
