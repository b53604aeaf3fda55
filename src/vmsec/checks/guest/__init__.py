"""Operating-system checks (scope GUEST): they run on every guest root and on the hypervisor host's
own OS, so their messages speak of "this system", never of "the guest"."""
