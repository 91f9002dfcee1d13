"""The local-global student-teacher (LGST): teacher, local and global students (self-attention in the global one), their maps, losses and training."""
