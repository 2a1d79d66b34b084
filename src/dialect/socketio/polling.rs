//! HTTP long polling (in progress).
