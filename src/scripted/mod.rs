//! The scripted model: a small OpenAI-compatible server driven by a script (being written).
