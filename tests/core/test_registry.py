"""The registry type every pluggable kind uses: one matching rule, one error."""
import pytest

from dlx.core import DlxError, Registry


@pytest.fixture
def samplers():
    registry = Registry("sampler", key="search.sampler")
    registry.register("tpe", "TPE")

    @registry.register("CmaEs")
    def make_cmaes():
        return "CMA-ES"

    return registry


def test_names_match_case_insensitively_and_dashes_match_underscores(samplers):
    assert samplers.get("TPE") == "TPE"
    assert samplers.get("cmaes")() == "CMA-ES"
    assert samplers.canonical("CMAES") == "CmaEs"
    assert "Tpe" in samplers and "gp" not in samplers and 3 not in samplers
    named = Registry("dataset")
    named.register("fashion_mnist", 1)
    assert named.get("Fashion-MNIST") == 1


def test_names_keep_registration_order(samplers):
    assert samplers.names() == ["tpe", "CmaEs"] and list(samplers) == ["tpe", "CmaEs"] and len(samplers) == 2


def test_an_unknown_name_lists_the_known_ones_and_suggests_the_nearest(samplers):
    with pytest.raises(DlxError) as caught:
        samplers.get("tep", file="space.yaml")
    error = caught.value
    assert error.key == "search.sampler" and error.file == "space.yaml"
    assert "unknown sampler 'tep'; expected one of: CmaEs, tpe. Did you mean 'tpe'?" in str(error)
    with pytest.raises(DlxError) as caught:
        samplers.get("zzz", key="sampler")
    assert caught.value.key == "sampler" and "Did you mean" not in str(caught.value)


def test_registering_a_name_twice_is_a_programming_error(samplers):
    with pytest.raises(ValueError, match="registered twice"):
        samplers.register("TPE", "again")
