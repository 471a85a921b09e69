"""The API layer's pure translations: image URIs of every region, metric lines, log events, List paging."""
from __future__ import annotations

import pytest

from smlocal.api import images, listing, logs, metrics
from smlocal.api.protocol import ApiError, check_request
from smlocal.runtime.jobspec import algorithm_from_image


@pytest.mark.parametrize("algorithm", ["kmeans", "linear-learner"])
def test_every_region_s_builtin_image_maps_to_our_algorithm(algorithm):
    """The runtime recognises what the SDK's image_uris builds, China and ISO partitions included."""
    import sagemaker

    regions = sagemaker.image_uris.config_for_framework(algorithm)["versions"]["1"]["registries"]
    assert len(regions) > 20 and any(r.startswith("cn-") for r in regions) and any("iso" in r for r in regions)
    for region in regions:
        uri = sagemaker.image_uris.retrieve(algorithm, region)
        assert algorithm_from_image(uri) == algorithm, uri
        assert images.local_algorithm_spec({"TrainingImage": uri}) == {"TrainingImage": uri}  # the runtime's


def test_framework_and_foreign_images():
    import sagemaker

    for region in ("eu-west-1", "cn-north-1"):
        sklearn = sagemaker.image_uris.retrieve("sklearn", region, version="1.2-1")
        assert images.local_algorithm_spec({"TrainingImage": sklearn}) == {}, sklearn
    assert images.local_algorithm_spec({"TrainingImage": "my/own:1"}) == {"TrainingImage": "my/own:1"}
    assert images.framework("docker.io/library/sagemaker-scikit-learn:1") is None  # not an AWS registry


def test_final_metrics_take_the_last_value_under_sagemaker_names():
    lines = ["#quality_metric: host=algo-1, epoch=0, validation objective_loss <loss>=0.9",
             "#quality_metric: host=algo-1, epoch=1, validation objective_loss <loss>=0.5",
             "#quality_metric: host=algo-1, test msd <loss>=0.0640",
             "#quality_metric: host=algo-1, test binary_classification_accuracy <score>=0.97",
             "unrelated line"]
    found = {m["MetricName"]: m["Value"] for m in metrics.final_metrics(lines, 1.0)}
    assert found == {"validation:objective_loss": 0.5, "test:msd": 0.064,
                     "test:binary_classification_accuracy": 0.97}


def test_a_builtins_final_metrics_carry_its_metric_definitions_names():
    """Linear learner: validation:objective_loss is the last epoch's, :final the selected model's."""
    from smlocal.tuning.metrics import BUILTIN_METRICS

    lines = ["#quality_metric: host=algo-1, epoch=0, validation binary_classification_cross_entropy_objective <loss>=0.3",
             "#quality_metric: host=algo-1, epoch=1, validation binary_classification_cross_entropy_objective <loss>=0.4",
             "#quality_metric: host=algo-1, validation binary_classification_cross_entropy_objective <loss>=0.3",
             "#quality_metric: host=algo-1, validation binary_classification_accuracy <score>=0.9"]
    found = {m["MetricName"]: m["Value"] for m in metrics.final_metrics(lines, 1.0, BUILTIN_METRICS["linear-learner"])}
    assert found["validation:objective_loss"] == 0.4 and found["validation:objective_loss:final"] == 0.3
    assert found["validation:binary_classification_accuracy"] == 0.9
    assert found["validation:binary_classification_cross_entropy_objective"] == 0.3  # the logged name too


def test_log_events_have_non_decreasing_timestamps(tmp_path):
    path = tmp_path / "algo-1.log"
    path.write_text("[01/02/2025 10:00:05 INFO 1] one\nno stamp\n[01/02/2025 10:00:01 INFO 1] clock went back\n")
    events = logs.events(logs.Stream("job/algo-1-0", path, 0))
    stamps = [e["timestamp"] for e in events]
    assert stamps[0] == stamps[1] == stamps[2] > 0
    assert [e["message"] for e in events][1] == "no stamp"


def test_list_pages_cover_every_record_once():
    records = [{"Name": f"job-{i}", "CreationTime": float(i), "Status": "Completed"} for i in range(7)]
    seen, token = [], None
    while True:
        request = {"MaxResults": 3, **({"NextToken": token} if token else {})}
        answer = listing.page(records, request, name_key="Name", status_key="Status",
                              summary=lambda r: r["Name"], result_key="Items")
        seen += answer["Items"]
        token = answer.get("NextToken")
        if not token:
            break
    assert seen == [f"job-{i}" for i in reversed(range(7))]


def test_request_checks_name_the_field():
    with pytest.raises(ApiError) as err:
        check_request("sagemaker", "CreateEndpoint", {"EndpointName": "x"})
    assert err.value.code == "ValidationException" and "'EndpointConfigName'" in err.value.message
    with pytest.raises(ApiError) as err:
        check_request("sagemaker", "ListEndpoints", {"MaxResults": "3"})
    assert err.value.code == "SerializationException" and "MaxResults" in err.value.message
