// Command purge-sweep runs on an EventBridge schedule and starts one purge per DELETED
// tenant whose retention has ended at the scheduled event's time.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
)

func main() {
	lambda.Start(purgeapp.Sweeper("PurgeSweepFunction", sfnapp.Executions, eventsapp.Publisher).Handle)
}
