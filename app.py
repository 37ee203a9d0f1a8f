"""Sieve's Streamlit app: navigation only.  The pages live in pages/."""

import streamlit as st

st.set_page_config(page_title="Sieve", page_icon=":material/filter_alt:", layout="wide")

st.navigation(
    [
        st.Page("pages/data.py", title="Data", icon=":material/description:", default=True),
        st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("pages/budget.py", title="Budget", icon=":material/balance:"),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
    ]
).run()
