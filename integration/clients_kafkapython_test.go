package integration

import (
	"os/exec"
	"testing"
)

// kafkaPython is Debian's interpreter, the one python3-kafka installs into
// (not whatever python3 comes first on PATH).
const kafkaPython = "/usr/bin/python3"

// TestClientMatrixKafkaPython runs the client matrix with kafka-python
// (Debian's python3-kafka), one Python process per step
// (testdata/kafka_python_driver.py).
func TestClientMatrixKafkaPython(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(kafkaPython, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Fatalf("kafka-python is not installed for %s (.ci/run installs python3-kafka): %v\n%s", kafkaPython, err, out)
	}
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &scriptDriver{
		name: "kafka-python",
		argv: []string{kafkaPython, "testdata/kafka_python_driver.py"},
		skips: map[string]string{
			stepIdempotent:    "kafka-python 2.0 has no idempotent producer",
			stepDeleteRecords: "kafka-python 2.0 has no DeleteRecords API",
		},
		n: n,
	})
}
