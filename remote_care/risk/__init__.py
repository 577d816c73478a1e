"""The deterioration-risk model: scoring, training and its pages."""
