"""Media decoding: turning files and time ranges into arrays.  Nothing here computes features."""
