"""Published image AUROC (%) on the real MVTec LOCO AD, thesis Table 5.1 (SPEC §6)."""

REFERENCE_AUROC = {
    "AeCSAD (thesis)": {"logical": 97.56, "structural": 92.54, "mean": 95.05},
    "CSAD": {"logical": 97.16, "structural": 92.12, "mean": 94.64},
    "EfficientAD": {"logical": 86.8, "structural": 94.7, "mean": 90.7},
    "PatchCore": {"logical": 73.9, "structural": 89.3, "mean": 81.6},
}
"""Method -> {logical, structural, mean} in percent. An honest CSAD reproduction without
test-set checkpoint selection reported about 91 mean."""

REFERENCE_NOTE = (
    "Reference rows are published numbers on the real MVTec LOCO AD benchmark; our rows are measured "
    "on the categories in this workspace, so compare orders of magnitude, not decimals."
)
