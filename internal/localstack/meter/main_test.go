package meter_test

import (
	"os"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
