"""Population analytics: filters, selectors, differencing protection and the dashboard."""
