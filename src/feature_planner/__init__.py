"""Feature Planner: AI feature suggestions for a page or component, streamed in two phases."""

__version__ = "0.1.0"
