"""HTTP as Lambda sees it, shared by the deployed functions and ``kontex dev``: the API
Gateway event codec (``apigw``) and the errors that only HTTP has (``errors``)."""
