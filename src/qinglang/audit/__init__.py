"""Compliance audit: requirement catalogue, checks over qinglang's records, reports, signed
bundles, impact assessments and rectification plans."""
