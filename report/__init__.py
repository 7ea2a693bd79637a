"""Results people can look at: `dlx runs` listings, `dlx report` figures and pages, TensorBoard logging."""
