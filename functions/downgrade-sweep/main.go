// Command downgrade-sweep runs on an EventBridge schedule and starts the period-end
// downgrades that are due at the scheduled event's time.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
)

func main() {
	lambda.Start(planapp.Sweeper("DowngradeSweepFunction", stripeapp.Billing, sfnapp.Executions).Handle)
}
