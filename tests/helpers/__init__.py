"""What the tests import: the real CLI, throwaway repositories, the Docker engine's
state, the real parts a test needs (`parts`), and stand-ins for services that cannot be
reached here (git and package servers, record services, registries behind auth)."""
