import pytest

from genprop import storage


@pytest.mark.timeout(120)
def test_ray_workers_reach_the_local_s3_endpoint(ray_local, s3_bucket):
    """Workers inherit the endpoint: a Ray Data task writes to s3:// and the driver reads it."""
    url = s3_bucket + "/from-worker.txt"

    def write(batch):
        storage.write_text(url, "hello")
        return batch

    ray_local.data.range(1).map_batches(write, num_cpus=0.5).materialize()
    assert storage.read_text(url) == "hello"
