package export

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestJobItemStaysFlatAsPartsGrow: the job is rewritten by every chunk, so its size
// must not grow with the export: after S3's maximum of 10,000 parts it is the size it
// was after one (the part count's digits aside), far below DynamoDB's 400 KB.
func TestJobItemStaysFlatAsPartsGrow(t *testing.T) {
	now := time.Now().UTC()
	job := &Job{ID: NewExportID(), TenantID: "tenant_acme", Status: Running, CreatedAt: now, UpdatedAt: now,
		Key: ObjectKey("tenant_acme", "x"), UploadID: "upload", HashState: make([]byte, 108), Counts: map[string]int64{SourceTenantData: 1},
		Cursor: Cursor{Phase: PhaseData, After: "item#000000001"}}
	sizes := map[int]int{}
	for n := int32(1); n <= MaxParts; n++ {
		job.recordPart(n, fmt.Sprintf(`"%032x"`, n), 8<<20)
		if n == 1 || n == 1000 || n == MaxParts {
			item, err := attributevalue.MarshalMap(job)
			if err != nil {
				t.Fatal(err)
			}
			sizes[int(n)] = itemSize(item)
		}
	}
	t.Logf("job item bytes after 1, 1,000 and 10,000 parts: %d, %d, %d", sizes[1], sizes[1000], sizes[MaxParts])
	if d := sizes[MaxParts] - sizes[1]; d > 4 {
		t.Errorf("the job item grew by %d bytes from 1 to %d parts", d, MaxParts)
	}
	if sizes[MaxParts] > 4<<10 {
		t.Errorf("the job item is %d bytes", sizes[MaxParts])
	}
}

// TestPartDigestSeesAnOverwrittenPart: the digest Finalize compares changes with any
// part's ETag, size or position.
func TestPartDigestSeesAnOverwrittenPart(t *testing.T) {
	chain := func(etags ...string) string {
		d := ""
		for i, e := range etags {
			d = chainPart(d, int32(i+1), e, 5<<20)
		}
		return d
	}
	base := chain(`"a"`, `"b"`, `"c"`)
	if chain("a", "b", "c") != base {
		t.Error("the digest depends on the ETag's quotes (S3 answers them quoted, some clients not)")
	}
	for _, other := range []string{chain(`"a"`, `"x"`, `"c"`), chain(`"a"`, `"c"`, `"b"`), chain(`"a"`, `"b"`)} {
		if other == base {
			t.Errorf("digest %s does not tell the parts apart", other)
		}
	}
	if chainPart(chainPart("", 1, "a", 5<<20), 2, "b", 1) == chainPart(chainPart("", 1, "a", 5<<20), 2, "b", 2) {
		t.Error("the digest ignores the size")
	}
}

// itemSize is DynamoDB's measure of an item: attribute names plus values (numbers
// count about one byte per two digits).
func itemSize(item map[string]dbtypes.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v dbtypes.AttributeValue) int {
	switch x := v.(type) {
	case *dbtypes.AttributeValueMemberS:
		return len(x.Value)
	case *dbtypes.AttributeValueMemberN:
		return len(x.Value)/2 + 1
	case *dbtypes.AttributeValueMemberB:
		return len(x.Value)
	case *dbtypes.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *dbtypes.AttributeValueMemberM:
		n := 3
		for k, e := range x.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 1
}
