"""The thresholds bench prints the figures behind the near-duplicate and decontamination thresholds; on a slice of
HumanEval they must show what the rules promise (this is a check of the rules, the figures themselves are the
bench's output)."""

from __future__ import annotations

from sinq.training.thresholds_bench import thresholds_bench


def test_the_place_check_separates_what_similarity_alone_cannot() -> None:
    result = thresholds_bench(limit=30, max_mutants=8)
    near = result["near_duplicates"]
    assert near["mutants"] > 100 and near["different_site_pairs"] > 100
    assert near["different_site_similar_share"] > 0.5, "mutants of one original look alike to MinHash"
    assert near["different_site_flagged_share"] == 0.0, "a change at another place is never a near duplicate"
    assert near["one_token_changes_caught_share"] > 0.5, "a change of an earlier variant is caught"
    table = result["decontamination"]["table"]
    caught = [row["held_out_mutants_caught_share"] for row in table]
    removed = [row["train_material_removed_share"] for row in table]
    assert caught == sorted(caught, reverse=True) and removed == sorted(removed, reverse=True)
    assert caught[0] > 0.5 and result["decontamination"]["held_out_programs"] > 0
